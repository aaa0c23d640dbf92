#!/usr/bin/env bash
# Creates (once) the Python environment with Prometheus's own client
# library, whose OpenMetrics parser the metrics test reads `/metrics` with,
# and prints its python path.
set -euo pipefail
venv="${THROUGHLINE_OPS_VENV:-$HOME/.cache/throughline-ops-venv}"
if ! "$venv/bin/python" -c "import prometheus_client.openmetrics.parser" >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "prometheus-client==0.23.1" >&2
fi
echo "$venv/bin/python"
