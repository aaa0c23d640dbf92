#!/usr/bin/env bash
# Creates (once) the Python environment with Schemathesis, the API fuzzer run
# against the real server's /openapi.json, and prints its `st` path.
set -euo pipefail
venv="${THROUGHLINE_SCHEMATHESIS_VENV:-$HOME/.cache/throughline-schemathesis-venv}"
if ! "$venv/bin/st" --version >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5" >&2
fi
echo "$venv/bin/st"
