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

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/throughline-target}"
oha=$(bash scripts/oha.sh)
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/throughline"

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export THROUGHLINE_PASSPHRASE="bench passphrase, not a secret"
"$bin" --data-dir "$tmp/d" init >/dev/null
"$bin" --data-dir "$tmp/d" tenant create bench >/dev/null
"$bin" --data-dir "$tmp/d" cert issue --tenant bench --channel voice --out "$tmp/c" >/dev/null
"$bin" --data-dir "$tmp/d" serve --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/out" && break; sleep 0.1; done
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/out")
url="https://localhost:$port/v1/health"
tls=(--cacert "$tmp/c/ca.crt" --cert "$tmp/c/client.crt" --key "$tmp/c/client.key")

echo "== machine: $(nproc) cores, $(uname -r); oha $("$oha" --version | awk '{print $2}')"
echo "== keep-alive: $conns connections, $duration, GET /v1/health"
"$oha" --no-tui -z "$duration" -c "$conns" "${tls[@]}" "$url" | grep -E 'Success rate|Requests/sec|Slowest|Fastest|Average|50.00%|99.00%|99.90%|\[200\]|\[4|\[5|Error'
echo "== new TLS connection per request (handshake each): $conns connections, $duration"
"$oha" --no-tui -z "$duration" -c "$conns" --disable-keepalive "${tls[@]}" "$url" | grep -E 'Success rate|Requests/sec|Slowest|Fastest|Average|50.00%|99.00%|99.90%|\[200\]|\[4|\[5|Error'
echo "== server-side handshake refusals: $(grep -c 'refused at handshake' "$tmp/log" || true)"
