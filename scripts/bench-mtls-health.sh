#!/usr/bin/env bash
# Handshakes/s and keep-alive requests/s on GET /v1/health over mutual TLS,
# measured with oha (a real load generator) against the release build.
#
#   scripts/bench-mtls-health.sh [DURATION=10s] [CONNECTIONS=32]
#
# Installs oha from crates.io if it is not on PATH. Everything runs on
# loopback; the load generator and the server share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
conns=${2:-32}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
bench_tenant bench "$tmp/c"
bench_serve
url="$base/v1/health"
tls=(--cacert "$tmp/c/ca.crt" --cert "$tmp/c/client.crt" --key "$tmp/c/client.key")

echo "== machine: $(nproc) cores, $(uname -r); oha $("$oha" --version | awk '{print $2}')"
echo "== keep-alive: $conns connections, $duration, GET /v1/health"
"$oha" --no-tui -z "$duration" -c "$conns" "${tls[@]}" "$url" | grep -E 'Success rate|Requests/sec|Slowest|Fastest|Average|50.00%|99.00%|99.90%|\[200\]|\[4|\[5|Error'
echo "== new TLS connection per request (handshake each): $conns connections, $duration"
"$oha" --no-tui -z "$duration" -c "$conns" --disable-keepalive "${tls[@]}" "$url" | grep -E 'Success rate|Requests/sec|Slowest|Fastest|Average|50.00%|99.00%|99.90%|\[200\]|\[4|\[5|Error'
echo "== server-side handshake refusals: $(grep -c 'refused at handshake' "$tmp/log" || true)"
