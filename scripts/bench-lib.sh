# Shared by the benchmark scripts (sourced, not run): the release build, oha,
# a temporary installation removed on exit, and a server started on a free
# loopback port.
#
#   bench_prepare          sets $oha, $bin, $tmp; initialises $tmp/d
#                          (THROUGHLINE_BENCH_BIN: a binary to measure instead
#                          of this tree's release build, e.g. an older commit's)
#   bench_tenant NAME DIR  creates a tenant and a voice certificate in DIR
#   bench_serve [ARGS...]  starts `serve` on 127.0.0.1:0; sets $pid and $base
#   bench_stop             stops the server started by bench_serve

bench_prepare() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/throughline-target}"
  oha=$(bash scripts/oha.sh)
  if [ -n "${THROUGHLINE_BENCH_BIN:-}" ]; then
    bin=$THROUGHLINE_BENCH_BIN
  else
    cargo build --release --quiet
    bin="$CARGO_TARGET_DIR/release/throughline"
  fi
  tmp=$(mktemp -d)
  pid=
  trap bench_cleanup EXIT
  export THROUGHLINE_PASSPHRASE="bench passphrase, not a secret"
  "$bin" --data-dir "$tmp/d" init >/dev/null
}

bench_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

bench_tenant() {
  "$bin" --data-dir "$tmp/d" tenant create "$1" >/dev/null
  "$bin" --data-dir "$tmp/d" cert issue --tenant "$1" --channel voice --out "$2" >/dev/null
}

bench_serve() {
  "$bin" --data-dir "$tmp/d" serve --listen 127.0.0.1:0 "$@" >"$tmp/out" 2>"$tmp/log" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$tmp/out" && break; sleep 0.1; done
  base="https://localhost:$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/out")"
}

bench_stop() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}
