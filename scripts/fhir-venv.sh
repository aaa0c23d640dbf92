#!/usr/bin/env bash
# Creates (once) the Python environment with the FHIR R4 validator used by
# the tests (fhir.resources 6.1.0 = FHIR 4.0.1; it needs pydantic 1) and
# prints its python path.
set -euo pipefail
venv="${THROUGHLINE_FHIR_VENV:-$HOME/.cache/throughline-fhir-venv}"
if ! "$venv/bin/python" -c "import fhir.resources" >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "fhir.resources==6.1.0" "pydantic<2" >&2
fi
echo "$venv/bin/python"
