#!/usr/bin/env bash
# The full HTTP path over mutual TLS across several tenants at once: one
# real server, one voice certificate per tenant, PROCESSES oha processes
# (oha presents one client certificate; process i loads tenant i mod
# TENANTS), all running together. Every request's latency is kept (oha's
# CSV) and the percentiles are computed over all of them, so the figures
# are for the whole load, not an average of per-process summaries. The
# server's own CPU time (from /proc) is reported per request, which does not
# depend on how much of the machine the load generators take.
#
# Run it with TENANTS=1 and the same PROCESSES to see what spreading the
# same load over tenants costs, apart from the load generators' share.
#
# SERVE_ARGS (environment) is passed to `serve`, e.g. SERVE_ARGS="--writers 2".
#
#   scripts/bench-tenants-http.sh [TENANTS=8] [DURATION=10s] [CONNECTIONS_PER_PROCESS=4] [PROCESSES=TENANTS]
set -euo pipefail
cd "$(dirname "$0")/.."
tenants=${1:-8}
duration=${2:-10s}
conns=${3:-4}
procs=${4:-$tenants}
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
for i in $(seq "$tenants"); do
  bench_tenant "clinic-$i" "$tmp/c$i"
done
# shellcheck disable=SC2086
bench_serve ${SERVE_ARGS:-}
tls() { echo --cacert "$tmp/c$1/ca.crt" --cert "$tmp/c$1/client.crt" --key "$tmp/c$1/client.key"; }
open='{"identifiers":{"phone":"+1 415 555 0100"},"evidence":{"caller_id_attestation":"A"}}'
for i in $(seq "$tenants"); do
  # shellcheck disable=SC2046
  curl -sf $(tls "$i") -H 'content-type: application/json' -X POST "$base/v1/sessions" -d "$open" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])' >"$tmp/sid$i"
done

# One load per route: every tenant's oha at once; then the merged figures.
load() {
  local key=$1 name=$2 path=$3 body=$4
  local cpu0 cpu1
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  for p in $(seq "$procs"); do
    local t=$(((p - 1) % tenants + 1))
    local url=${path/\{sid\}/$(cat "$tmp/sid$t")}
    # shellcheck disable=SC2046
    "$oha" --no-tui --output-format csv -z "$duration" -c "$conns" $(tls "$t") -m POST \
      -H 'content-type: application/json' -d "$body" "$base$url" >"$tmp/$key.$p.csv" &
  done
  wait $(jobs -p | grep -v "^$pid$")
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  python3 - "$name" "$tenants" "$((procs * conns))" "$duration" "$(((cpu1 - cpu0) * 1000 / $(getconf CLK_TCK)))" \
    "$tmp/$key".*.csv <<'EOF'
import csv, sys
name, tenants, conns, duration, cpu_ms, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:]
secs = float(duration.rstrip("s"))
lat, ok, bad = [], 0, 0
for f in files:
    for row in csv.DictReader(open(f)):
        if row["status"].startswith("2"):
            ok += 1
            lat.append(float(row["request-duration"]) * 1e3)
        else:
            bad += 1
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(f"| {name} | {tenants} | {conns} | {ok / secs:,.0f} | {pct(0.5):.2f} | {pct(0.99):.2f} | {cpu_ms / max(ok, 1):.3f} | {bad} |")
EOF
}

echo "== machine: $(nproc) cores, $(uname -r); oha $("$oha" --version | awk '{print $2}'); $(date -u +%FT%TZ)"
echo "== $tenants tenants, $procs oha processes of $conns connections, $duration per route, one server ${SERVE_ARGS:-}"
echo "| route | tenants | connections | requests/s (all tenants) | p50 ms | p99 ms | server CPU ms per request | errors |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
load opens "POST /v1/sessions" "/v1/sessions" "$open"
load turns "POST /v1/sessions/{id}/turns" "/v1/sessions/{sid}/turns" '{"speaker":"agent","text":"How can I help you today?"}'
