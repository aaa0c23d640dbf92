#!/usr/bin/env bash
# What cluster mode costs one node (issue 22, acceptance 2): the same server,
# the same tenant and load, with and without `--cluster`, in one run on one
# machine, alternating. In cluster mode every group commit is appended to the
# commit log in PostgreSQL 15 (synchronous_commit=on, fsync on, a local
# socket-free loopback connection) before it is answered; etcd is one member.
# Also prints the log's bytes per record and per acknowledged write, read
# from the node's own metrics.
#
#   scripts/bench-cluster.sh [DURATION=10s] [CONNECTIONS=32] [ROUNDS=2]
#
# Run as root (PostgreSQL runs as postgres). Figures only; nothing asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
conns=${2:-32}
rounds=${3:-2}
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
pgbin=/usr/lib/postgresql/15/bin
domain=clinics.test

# PostgreSQL and etcd of their own, removed with $tmp.
mkdir -p "$tmp/pg" && chown postgres:postgres "$tmp/pg" && chmod 700 "$tmp/pg"
chmod 755 "$tmp"
runuser -u postgres -- "$pgbin/initdb" -D "$tmp/pg/data" -A trust -U throughline >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" start -D "$tmp/pg/data" -w -l "$tmp/pg/log" \
  -o "-p 25432 -k $tmp/pg -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on -c max_wal_size=1GB" >/dev/null
etcd --name b1 --data-dir "$tmp/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster b1=http://127.0.0.1:23800 >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
stop_all() {
  kill "$etcd_pid" 2>/dev/null || true
  runuser -u postgres -- "$pgbin/pg_ctl" stop -D "$tmp/pg/data" -m fast >/dev/null 2>&1 || true
  bench_cleanup
}
trap stop_all EXIT INT TERM
cat >"$tmp/cluster.toml" <<EOF
node = "b1"
nodes = ["b1"]
advertise = "127.0.0.1:0"
etcd = ["http://127.0.0.1:23790"]
postgres = "host=127.0.0.1 port=25432 user=throughline dbname=postgres"
tenant_domain = "$domain"
snapshot_every = "10m"
EOF

echo "== machine: $(nproc) cores, $(uname -r); PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), etcd $(etcd --version | head -1 | awk '{print $3}'); $(date -u +%FT%TZ)"
bench_tenant bench "$tmp/c"
tls=(--cacert "$tmp/c/ca.crt" --cert "$tmp/c/client.crt" --key "$tmp/c/client.key")
open_body='{"identifiers":{"phone":"+1 415 555 0100"},"evidence":{"caller_id_attestation":"A"}}'
summary='Success rate|Requests/sec|50.00%|99.00%'
metrics_port=29464

run_mode() { # mode
  local mode=$1 flags=() host=localhost
  if [ "$mode" = cluster ]; then
    flags=(--cluster "$tmp/cluster.toml" --server-name "bench.$domain")
    host="bench.$domain"
  fi
  bench_serve "${flags[@]}" --metrics-listen "127.0.0.1:$metrics_port"
  local port
  port=$(sed -n 's|^listening on https://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/out")
  local url="https://$host:$port"
  local resolve=(--connect-to "$host:$port:127.0.0.1:$port")
  for _ in $(seq 100); do
    curl -s "${tls[@]}" --resolve "$host:$port:127.0.0.1" -H 'content-type: application/json' -X POST "$url/v1/sessions" \
      -d "$open_body" -o "$tmp/open.json" -w "%{http_code}" | grep -q "^200$" && break
    sleep 0.1
  done
  local sid
  sid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_id"])' "$tmp/open.json")
  echo "== $mode: $conns connections, $duration: POST /v1/sessions"
  "$oha" --no-tui -z "$duration" -c "$conns" "${tls[@]}" "${resolve[@]}" -m POST -H 'content-type: application/json' \
    -d "$open_body" "$url/v1/sessions" | grep -E "$summary"
  echo "== $mode: $conns connections, $duration: POST /v1/sessions/{id}/turns"
  "$oha" --no-tui -z "$duration" -c "$conns" "${tls[@]}" "${resolve[@]}" -m POST -H 'content-type: application/json' \
    -d '{"speaker":"agent","text":"How can I help you today?"}' "$url/v1/sessions/$sid/turns" | grep -E "$summary"
  if [ "$mode" = cluster ]; then
    curl -s "http://127.0.0.1:$metrics_port/metrics" | python3 -c '
import re, sys
m = {}
for line in sys.stdin:
    g = re.match(r"(throughline_cluster_log_records_total|throughline_cluster_log_bytes_total|throughline_group_commit_jobs_(sum|count)) ([0-9.e+]+)", line)
    if g:
        m[g.group(1)] = float(g.group(3))
rec, byt = m.get("throughline_cluster_log_records_total", 0), m.get("throughline_cluster_log_bytes_total", 0)
jobs, groups = m.get("throughline_group_commit_jobs_sum", 0), m.get("throughline_group_commit_jobs_count", 0)
if rec:
    print("== cluster log: %d records, %.1f MB; %d bytes a record (one per group commit); %d jobs in %d groups: %.0f bytes an acknowledged write" % (rec, byt / 1e6, byt / rec, jobs, groups, byt / max(jobs, 1)))
'
  fi
  bench_stop
}

for round in $(seq "$rounds"); do
  echo "== round $round"
  run_mode single
  run_mode cluster
done
