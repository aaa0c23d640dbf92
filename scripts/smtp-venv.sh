#!/usr/bin/env bash
# Creates (once) the Python environment with aiosmtpd, the real SMTP server
# the outbound-email tests deliver to on loopback, and prints its python path.
set -euo pipefail
venv="${THROUGHLINE_SMTP_VENV:-$HOME/.cache/throughline-smtp-venv}"
if ! "$venv/bin/python" -c "import aiosmtpd" >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==1.4.6" >&2
fi
echo "$venv/bin/python"
