#!/usr/bin/env bash
# Creates (once) the Python environment with the platforms' own SDKs that the
# bridge tests sign requests with (Twilio's RequestValidator), and prints its
# python path.
set -euo pipefail
venv="${THROUGHLINE_PLATFORM_VENV:-$HOME/.cache/throughline-platform-venv}"
if ! "$venv/bin/python" -c "import twilio.request_validator" >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "twilio==9.8.5" >&2
fi
echo "$venv/bin/python"
