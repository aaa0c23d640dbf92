#!/usr/bin/env bash
# The full HTTP path over mutual TLS with a real load generator (oha), side
# by side with the raw in-process SQLCipher cost of the same work, measured
# in the same run on the same machine:
#
#   (a) raw: the session open's SQL statements on SQLCipher, in-process
#   (b) service: the continuity layer in-process (`throughline bench`)
#   (c) HTTP: POST /v1/sessions and POST /v1/sessions/{id}/turns over mTLS
#       keep-alive, with group commit on and off
#
#   scripts/bench-http.sh [DURATION=10s] [CONNECTIONS=32]
#
# THROUGHLINE_BENCH_OPEN overrides the session-open body (a build from
# before evidence counted takes no "evidence" field).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
conns=${2:-32}
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare

echo "== machine: $(nproc) cores, $(uname -r); oha $("$oha" --version | awk '{print $2}'); $(date -u +%FT%TZ)"
echo "== (a) raw and (b) service, in-process, sequential, synchronous=FULL, 10,000 patients"
"$bin" bench --patients 10000 --opens 2000 | tail -4

open_body=${THROUGHLINE_BENCH_OPEN:-'{"identifiers":{"phone":"+1 415 555 0100"},"evidence":{"caller_id_attestation":"A"}}'}
bench_tenant bench "$tmp/c"
tls=(--cacert "$tmp/c/ca.crt" --cert "$tmp/c/client.crt" --key "$tmp/c/client.key")
summary='Success rate|Requests/sec|50.00%|99.00%|\[2|\[4|\[5|Error'

for mode in group single; do
  flag=()
  [ "$mode" = single ] && flag=(--no-group-commit)
  bench_serve "${flag[@]}"
  sid=$(curl -sf "${tls[@]}" -H 'content-type: application/json' -X POST "$base/v1/sessions" \
    -d "$open_body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
  echo "== (c) HTTP, commit: $mode, $conns connections, $duration: POST /v1/sessions (resolve + context + audit)"
  "$oha" --no-tui -z "$duration" -c "$conns" "${tls[@]}" -m POST -H 'content-type: application/json' \
    -d "$open_body" "$base/v1/sessions" | grep -E "$summary"
  echo "== (c) HTTP, commit: $mode, $conns connections, $duration: POST /v1/sessions/{id}/turns"
  "$oha" --no-tui -z "$duration" -c "$conns" "${tls[@]}" -m POST -H 'content-type: application/json' \
    -d '{"speaker":"agent","text":"How can I help you today?"}' "$base/v1/sessions/$sid/turns" | grep -E "$summary"
  bench_stop
done
