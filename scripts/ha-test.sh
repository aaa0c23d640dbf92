#!/usr/bin/env bash
# The chaos harness (issue 22, docs/HA.md): on loopback, a 3-member etcd,
# PostgreSQL under Patroni (a primary and a synchronous standby, on the same
# etcd), 3 Throughline nodes in cluster mode and HAProxy routing by SNI; a
# session-open and turn-append load over mutual TLS through HAProxy on
# several tenants; then the faults, one after another, the load running:
#
#   kill -9 of a tenant's owner            (then it restarts, as a standby)
#   SIGSTOP of an owner past its lease, then SIGCONT (the stale owner must refuse)
#   kill -9 of the etcd leader             (then it restarts)
#   kill -9 of the PostgreSQL primary      (Patroni promotes the synchronous standby)
#   a node cut off: its packets to etcd and PostgreSQL dropped (nftables, by
#     the node's user), then let back
#   a planned move (cluster move) under load
#
# It ends with one line:
#   ha: acknowledged N, lost L, duplicated D, failover p50 X s max Y s, stale owner refused, chain verified
#
#   scripts/ha-test.sh [--quick]      (--quick: one round of each fault, ~6 minutes here)
#
# Needs Debian's etcd-server, etcd-client, haproxy, patroni, postgresql-15,
# nftables (scripts/test-deps.sh installs them) and a built `throughline` (debug unless
# THROUGHLINE_BIN says otherwise). Run as root (PostgreSQL runs as postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = --quick ] && quick=1
rounds=$((quick ? 1 : 3))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/throughline-target}"
bin=${THROUGHLINE_BIN:-$CARGO_TARGET_DIR/debug/throughline}
[ -x "$bin" ] || cargo build --quiet --bin throughline
pgbin=/usr/lib/postgresql/15/bin
tmp=$(mktemp -d /tmp/ha-test.XXXXXX)
chmod 755 "$tmp"
export THROUGHLINE_PASSPHRASE="ha-test passphrase, not a secret"
export ETCDCTL_API=3
domain=clinics.test
tenants=(sunrise harbor maple)
nodes=(n1 n2 n3)
etcd_eps="http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
declare -A pid

log() { echo "[$(date +%T)] $*" >&2; }
cleanup() {
  set +e
  nft delete table inet tl_ha_test 2>/dev/null
  touch "$tmp/stop"
  for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
  pkill -9 -f "$tmp/" 2>/dev/null
  wait 2>/dev/null
  if [ "${HA_KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- etcd: three members ----------------------------------------------------
etcd_start() {
  local i=$1
  etcd --name "e$i" --data-dir "$tmp/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${i}2379" --advertise-client-urls "http://127.0.0.1:${i}2379" \
    --listen-peer-urls "http://127.0.0.1:${i}2380" --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
    --initial-cluster "e1=http://127.0.0.1:12380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380" \
    --initial-cluster-state "${2:-new}" --initial-cluster-token ha-test \
    >"$tmp/etcd$i.log" 2>&1 &
  pid[etcd$i]=$!
}
for i in 1 2 3; do etcd_start $i; done
for _ in $(seq 100); do etcdctl --endpoints "$etcd_eps" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
etcdctl --endpoints "$etcd_eps" endpoint health >/dev/null
log "etcd: 3 members healthy"

# --- PostgreSQL under Patroni: a primary and a synchronous standby --------------
id -u postgres >/dev/null
patroni_start() {
  local i=$1
  mkdir -p "$tmp/pg$i"
  chown postgres:postgres "$tmp/pg$i"
  chmod 700 "$tmp/pg$i"
  cat >"$tmp/patroni$i.yml" <<EOF
scope: throughline-log
name: pg$i
restapi: {listen: 127.0.0.1:1800$i, connect_address: 127.0.0.1:1800$i}
etcd3: {hosts: [127.0.0.1:12379, 127.0.0.1:22379, 127.0.0.1:32379]}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    synchronous_mode: true
    synchronous_mode_strict: true
    postgresql:
      # A killed primary may hold WAL the new primary never saw: rewound, or
      # rebuilt from the new primary, so it can come back as the synchronous
      # standby; the new primary keeps the WAL it needs to catch up meanwhile.
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      parameters: {synchronous_commit: "on", fsync: "on", wal_level: replica, max_wal_senders: 5, hot_standby: "on",
                   wal_log_hints: "on", max_wal_size: 512MB, min_wal_size: 64MB, wal_keep_size: 1GB}
      use_slots: true
  initdb: [{auth: trust}, {encoding: UTF8}]
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:1543$i
  connect_address: 127.0.0.1:1543$i
  data_dir: $tmp/pg$i/data
  bin_dir: $pgbin
  pgpass: $tmp/pg$i/pgpass
  authentication:
    superuser: {username: postgres}
    replication: {username: postgres}
  parameters: {unix_socket_directories: "$tmp/pg$i"}
EOF
  runuser -u postgres -- patroni "$tmp/patroni$i.yml" >"$tmp/patroni$i.log" 2>&1 &
  pid[patroni$i]=$!
}
pg_primary() { curl -s "http://127.0.0.1:1800$1/primary" -o /dev/null -w '%{http_code}'; }
patroni_start 1
for _ in $(seq 300); do [ "$(pg_primary 1)" = 200 ] && break; sleep 0.2; done
[ "$(pg_primary 1)" = 200 ] || { tail -20 "$tmp/patroni1.log" >&2; exit 1; }
patroni_start 2
for _ in $(seq 300); do
  curl -s http://127.0.0.1:18001/cluster | grep -q '"sync_standby"' && break
  sleep 0.2
done
curl -s http://127.0.0.1:18001/cluster | grep -q '"sync_standby"' || { tail -20 "$tmp/patroni2.log" >&2; exit 1; }
runuser -u postgres -- psql -h 127.0.0.1 -p 15431 -U postgres -qc "CREATE DATABASE throughline" >/dev/null
log "PostgreSQL: pg1 primary, pg2 synchronous standby (Patroni, strict synchronous mode)"
dsn="host=127.0.0.1,127.0.0.1 port=15431,15432 user=postgres dbname=throughline target_session_attrs=read-write connect_timeout=2"

# --- One installation, three tenants, copied to three nodes ---------------------
seed="$tmp/seed"
"$bin" --data-dir "$seed" init >/dev/null
mkdir -p "$tmp/certs" "$tmp/checkpoints"
for t in "${tenants[@]}"; do
  "$bin" --data-dir "$seed" tenant create "$t" >/dev/null
  "$bin" --data-dir "$seed" cert issue --tenant "$t" --channel voice --out "$tmp/certs/$t" >/dev/null
done
# A second certificate of the first tenant and a staff account, revoked and
# disabled on one node mid-run.
spare_serial=$("$bin" --data-dir "$seed" cert issue --tenant "${tenants[0]}" --channel chat --out "$tmp/certs/spare" \
  | awk '/^serial /{print $2}')
printf 'ha-test staff password\n' >"$tmp/staff.pw"
staff_id=$("$bin" --data-dir "$seed" staff add --tenant "${tenants[0]}" --email desk@ha.example --role front_desk \
  --password-file "$tmp/staff.pw" | awk '/^staff id: /{print $3}')
names=()
declare -A vkey
for t in "${tenants[@]}"; do
  names+=(--server-name "$t.$domain")
  # A checkpoint signed before the cluster starts; every chain must extend it at the end.
  "$bin" --data-dir "$seed" audit checkpoint --tenant "$t" --out "$tmp/checkpoints/$t.note" >/dev/null
  vkey[$t]=$("$bin" --data-dir "$seed" audit key --tenant "$t" | tail -1 | awk '{print $NF}')
done

# --- HAProxy: SNI passthrough, one backend per node, a runtime socket ------------
: >"$tmp/tenants.map"
cat >"$tmp/haproxy.cfg" <<EOF
global
    # The nodes (users of their own) update the map here; a test socket in a private temporary directory.
    stats socket $tmp/haproxy.sock mode 666 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend fe_channels
    bind 127.0.0.1:18443
    tcp-request inspect-delay 2s
    tcp-request content reject unless { req.ssl_hello_type 1 }
    use_backend %[req.ssl_sni,lower,map($tmp/tenants.map,be_reject)]
backend be_reject
    tcp-request content reject
EOF
for i in 1 2 3; do
  printf 'backend be_n%s\n    server n%s 127.0.0.1:1944%s check inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n' "$i" "$i" "$i" >>"$tmp/haproxy.cfg"
done
haproxy -c -f "$tmp/haproxy.cfg" >/dev/null
haproxy -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
pid[haproxy]=$!

# --- Three nodes -------------------------------------------------------------------
# Each node runs as a user of its own, so a fault can cut one node's traffic
# to etcd and PostgreSQL (nftables matches the socket's owner) while
# HAProxy still reaches it. setpriv execs in place: $! is the node itself.
install -m 755 "$bin" "$tmp/throughline"
for i in 1 2 3; do id "tl-ha$i" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "tl-ha$i"; done
node_start() {
  local i=$1
  setpriv --reuid="tl-ha$i" --regid="tl-ha$i" --clear-groups -- \
    "$tmp/throughline" --data-dir "$tmp/n$i" serve --listen "127.0.0.1:1944$i" "${names[@]}" \
    --cluster "$tmp/n$i.toml" --checkpoint-interval 0s >>"$tmp/n$i.out" 2>>"$tmp/n$i.log" &
  pid[n$i]=$!
}
for i in 1 2 3; do
  cp -a "$seed" "$tmp/n$i"
  chown -R "tl-ha$i:tl-ha$i" "$tmp/n$i"
  cat >"$tmp/n$i.toml" <<EOF
node = "n$i"
nodes = ["n1", "n2", "n3"]
advertise = "127.0.0.1:1944$i"
etcd = ["http://127.0.0.1:12379", "http://127.0.0.1:22379", "http://127.0.0.1:32379"]
postgres = "$dsn"
tenant_domain = "$domain"
lease_ttl = "2s"
snapshot_every = "${HA_SNAPSHOT_EVERY:-30s}"
append_timeout = "60s"
[haproxy]
runtime = ["$tmp/haproxy.sock"]
map = "$tmp/tenants.map"
backend = "be_n$i"
EOF
  node_start "$i"
done
owner_of() { etcdctl --endpoints "$etcd_eps" get --print-value-only "/throughline/owner/$1" 2>/dev/null | awk '{print $1}'; }
tenant_id() { "$bin" --data-dir "$seed" tenant list 2>/dev/null | awk -v n="$1" '$0 ~ n {for (i=1;i<=NF;i++) if ($i ~ /^ten_/) print $i}' | head -1; }
declare -A tid
for t in "${tenants[@]}"; do tid[$t]=$(tenant_id "$t"); done
all_owned() { for t in "${tenants[@]}"; do [ -n "$(owner_of "${tid[$t]}")" ] || return 1; done; }
for _ in $(seq 150); do all_owned && break; sleep 0.2; done
all_owned || { tail -5 "$tmp"/n*.log >&2; exit 1; }
for t in "${tenants[@]}"; do log "tenant $t (${tid[$t]}): owned by $(owner_of "${tid[$t]}")"; done

# --- The load ------------------------------------------------------------------------
python3 scripts/ha/load.py --proxy 127.0.0.1:18443 --domain "$domain" --certs "$tmp/certs" \
  --tenants "$(IFS=,; echo "${tenants[*]}")" --workers 2 --stop "$tmp/stop" \
  --log "$tmp/requests.jsonl" --acked "$tmp/acked.jsonl" 2>"$tmp/load.err" &
pid[load]=$!
sleep 8
ok_count() { grep -c '"ok": true' "$tmp/requests.jsonl" 2>/dev/null || echo 0; }
log "load running: $(ok_count) requests acknowledged so far"
[ "$(ok_count)" -gt 0 ] || { tail -20 "$tmp/load.err" "$tmp"/n*.log >&2; exit 1; }

# SNI is only a routing hint: a valid certificate of one tenant asking for
# another tenant's hostname reaches that tenant's owner, which refuses it.
code=$(curl -s -o /dev/null -w '%{http_code}' --resolve "${tenants[1]}.$domain:18443:127.0.0.1" \
  --cacert "$tmp/certs/${tenants[0]}/ca.crt" --cert "$tmp/certs/${tenants[0]}/client.crt" \
  --key "$tmp/certs/${tenants[0]}/client.key" -H 'content-type: application/json' -X POST \
  "https://${tenants[1]}.$domain:18443/v1/sessions" -d '{"identifiers":{"phone":"+1 415 555 0198"}}' || true)
log "a ${tenants[0]} certificate sent to ${tenants[1]}'s hostname: $code"
[ "$code" = 421 ] || { log "the node did not refuse a certificate for another tenant's hostname"; exit 1; }

# A revocation made on one node reaches every node (second review, L8): the
# operator revokes on n1's copy; each node, asked directly, must answer 401
# certificate_revoked (not 421) within seconds.
spare_code() { # node number
  curl -s -o /dev/null -w '%{http_code}' --resolve "${tenants[0]}.$domain:1944$1:127.0.0.1" \
    --cacert "$tmp/certs/spare/ca.crt" --cert "$tmp/certs/spare/client.crt" --key "$tmp/certs/spare/client.key" \
    -H 'content-type: application/json' -X POST "https://${tenants[0]}.$domain:1944$1/v1/sessions" \
    -d '{"identifiers":{"phone":"+1 415 555 0197"}}' || true
}
setpriv --reuid=tl-ha1 --regid=tl-ha1 --clear-groups -- "$tmp/throughline" --data-dir "$tmp/n1" cert revoke "$spare_serial" >/dev/null
revoked_at=$(date +%s.%N)
revoked_everywhere=0
for _ in $(seq 100); do
  [ "$(spare_code 1)" = 401 ] && [ "$(spare_code 2)" = 401 ] && [ "$(spare_code 3)" = 401 ] && { revoked_everywhere=1; break; }
  sleep 0.1
done
[ "$revoked_everywhere" = 1 ] || { log "a certificate revoked on n1 was still honoured elsewhere: $(spare_code 2) $(spare_code 3)"; exit 1; }
log "a certificate revoked on n1 refused by every node $(awk -v a="$revoked_at" -v b="$(date +%s.%N)" "BEGIN {printf \"%.1f\", b - a}") s after"
as_node() { local i=$1; shift; setpriv --reuid="tl-ha$i" --regid="tl-ha$i" --clear-groups -- "$tmp/throughline" --data-dir "$tmp/n$i" "$@"; }
as_node 1 staff disable --tenant "${tenants[0]}" "$staff_id" >/dev/null
disabled_everywhere=0
for _ in $(seq 50); do
  [ "$(as_node 2 staff list --tenant "${tenants[0]}" | grep -c "$staff_id.*disabled")" = 1 ] \
    && [ "$(as_node 3 staff list --tenant "${tenants[0]}" | grep -c "$staff_id.*disabled")" = 1 ] && { disabled_everywhere=1; break; }
  sleep 0.2
done
[ "$disabled_everywhere" = 1 ] || { log "a staff account disabled on n1 was still active elsewhere"; exit 1; }
log "a staff account disabled on n1 is disabled on n2 and n3"

: >"$tmp/faults.jsonl"
fault() { # name, tenant ids affected
  local name=$1
  shift
  python3 -c 'import json,sys,time; print(json.dumps({"fault": sys.argv[1], "t": time.time(), "tenants": sys.argv[2:]}))' "$name" "$@" >>"$tmp/faults.jsonl"
}
names_of() { # tenants (names) owned by node $1
  local out=()
  for t in "${tenants[@]}"; do [ "$(owner_of "${tid[$t]}")" = "$1" ] && out+=("$t"); done
  echo "${out[@]}"
}
wait_owned_elsewhere() { # node, tenant names
  local node=$1
  shift
  for _ in $(seq 100); do
    local moved=1
    for t in "$@"; do
      local o
      o=$(owner_of "${tid[$t]}")
      { [ -z "$o" ] || [ "$o" = "$node" ]; } && moved=0
    done
    [ $moved = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
stale_refused=1
for round in $(seq "$rounds"); do
  # 1. kill -9 of the owner of the first tenant.
  victim=$(owner_of "${tid[${tenants[0]}]}")
  i=${victim#n}
  affected=$(names_of "$victim")
  log "round $round: kill -9 $victim (owns: $affected)"
  kill -9 "${pid[$victim]}"
  # shellcheck disable=SC2086
  fault "kill -9 owner" $affected
  # shellcheck disable=SC2086
  wait_owned_elsewhere "$victim" $affected || log "  not taken over in 10 s"
  sleep 5
  node_start "$i"
  sleep 8

  # 2. SIGSTOP of an owner past its lease, then SIGCONT: it must refuse.
  victim=$(owner_of "${tid[${tenants[1]}]}")
  affected=$(names_of "$victim")
  log "round $round: SIGSTOP $victim (owns: $affected) for 6 s"
  kill -STOP "${pid[$victim]}"
  # shellcheck disable=SC2086
  fault "SIGSTOP owner" $affected
  # shellcheck disable=SC2086
  wait_owned_elsewhere "$victim" $affected || log "  not taken over in 10 s"
  sleep 3
  kill -CONT "${pid[$victim]}"
  # The woken node, asked directly for a tenant it lost, must refuse (421).
  t=${affected%% *}
  code=$(curl -s -o /dev/null -w '%{http_code}' --resolve "$t.$domain:1944${victim#n}:127.0.0.1" \
    --cacert "$tmp/certs/$t/ca.crt" --cert "$tmp/certs/$t/client.crt" --key "$tmp/certs/$t/client.key" \
    -H 'content-type: application/json' -X POST "https://$t.$domain:1944${victim#n}/v1/sessions" \
    -d '{"identifiers":{"phone":"+1 415 555 0199"},"evidence":{"caller_id_attestation":"A"}}' || true)
  log "  the woken $victim answered $code for $t"
  [ "$code" = 421 ] || stale_refused=0
  sleep 8

  # 3. A node cut off: its packets to etcd and PostgreSQL dropped (HAProxy still reaches it).
  victim=$(owner_of "${tid[${tenants[2]}]}")
  affected=$(names_of "$victim")
  log "round $round: cut $victim off from etcd and PostgreSQL (owns: $affected) for 12 s"
  nft add table inet tl_ha_test
  nft add chain inet tl_ha_test out '{ type filter hook output priority 0; }'
  nft add rule inet tl_ha_test out meta skuid "tl-ha${victim#n}" tcp dport '{ 12379, 22379, 32379, 15431, 15432 }' drop
  # shellcheck disable=SC2086
  fault "node cut off" $affected
  # shellcheck disable=SC2086
  wait_owned_elsewhere "$victim" $affected || log "  not taken over in 10 s"
  t=${affected%% *}
  code=$(curl -s -o /dev/null -w '%{http_code}' --resolve "$t.$domain:1944${victim#n}:127.0.0.1" \
    --cacert "$tmp/certs/$t/ca.crt" --cert "$tmp/certs/$t/client.crt" --key "$tmp/certs/$t/client.key" \
    -H 'content-type: application/json' -X POST "https://$t.$domain:1944${victim#n}/v1/sessions" \
    -d '{"identifiers":{"phone":"+1 415 555 0197"},"evidence":{"caller_id_attestation":"A"}}' || true)
  log "  the cut-off $victim answered $code for $t"
  [ "$code" = 421 ] || stale_refused=0
  sleep 8
  nft delete table inet tl_ha_test
  log "  $victim reconnected"
  sleep 8

  # 4. kill -9 of the etcd leader.
  leader=$(etcdctl --endpoints "$etcd_eps" endpoint status -w json 2>/dev/null \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print([e["Endpoint"] for e in s if e["Status"]["leader"]==e["Status"]["header"]["member_id"]][0])')
  e=${leader#http://127.0.0.1:}
  e=${e%2379}
  log "round $round: kill -9 etcd leader e$e"
  kill -9 "${pid[etcd$e]}"
  fault "kill -9 etcd leader" "${tenants[@]}"
  sleep 8
  etcd_start "$e" existing
  sleep 5

  # 5. kill -9 of the PostgreSQL primary: Patroni promotes the synchronous standby.
  for p in 1 2; do [ "$(pg_primary $p)" = 200 ] && primary=$p; done
  log "round $round: kill -9 PostgreSQL primary pg$primary (and its Patroni)"
  # Patroni first (runuser's child; it would restart PostgreSQL and keep the leader key), then PostgreSQL.
  pkill -9 -f "patroni $tmp/patroni$primary.yml" || true
  pkill -9 -f "$tmp/pg$primary/data" || true
  fault "kill -9 PostgreSQL primary" "${tenants[@]}"
  for _ in $(seq 600); do
    other=$((3 - primary))
    [ "$(pg_primary $other)" = 200 ] && break
    sleep 0.1
  done
  log "  pg$other primary: $(pg_primary $other)"
  sleep 10
  patroni_start "$primary"
  for _ in $(seq 600); do
    curl -s "http://127.0.0.1:1800$other/cluster" | grep -q '"sync_standby"' && break
    sleep 0.2
  done
  if curl -s "http://127.0.0.1:1800$other/cluster" | grep -q '"sync_standby"'; then
    log "  pg$primary back as the synchronous standby"
  else
    log "  pg$primary did not come back as the synchronous standby: writes wait (strict synchronous mode)"
  fi
  sleep 5
done

# A planned move, under load: the owner hands over, the target (a caught-up standby) serves.
t=${tenants[2]}
from=$(owner_of "${tid[$t]}")
to=n1
[ "$from" = n1 ] && to=n2
fault "cluster move" "$t"
log "$("$bin" cluster move "${tid[$t]}" --to "$to" --cluster "$tmp/n1.toml" 2>&1 | tail -1)"
sleep 5
# Every node came back from its fault: each tenant has an owner and two standbys reporting.
"$bin" cluster status --cluster "$tmp/n1.toml" | tee "$tmp/status.txt" >&2 || true
recovered=1
for t in "${tenants[@]}"; do
  line=$(grep "${tid[$t]}" "$tmp/status.txt" || true)
  n=$(echo "$line" | grep -o 'n[0-9] ([0-9]*)' | wc -l)
  [ "$n" = 2 ] || { recovered=0; log "tenant $t: $n standbys reporting, not 2"; }
done

# An erasure in cluster mode: the owner snapshots the tenant at once, which
# prunes every log record from before it (the erased patient's pages among them).
t=${tenants[0]}
api() { # method path body; a 421 (not_owner: the route is moving) is retried, as a client does
  local out
  for _ in $(seq 20); do
    out=$(curl -s --resolve "$t.$domain:18443:127.0.0.1" --cacert "$tmp/certs/$t/ca.crt" --cert "$tmp/certs/$t/client.crt" \
      --key "$tmp/certs/$t/client.key" -H 'content-type: application/json' -X "$1" "https://$t.$domain:18443$2" -d "$3")
    case "$out" in *'"not_owner"'*) log "  $1 $2: 421, the route is moving; again"; sleep 0.5 ;; *) break ;; esac
  done
  printf '%s' "$out"
}
sid_of() { python3 -c 'import json,sys
body = sys.stdin.read()
try:
    print(json.loads(body)["session_id"])
except (KeyError, ValueError):
    sys.exit("no session: " + body[:300])'; }
sid=$(api POST /v1/sessions '{"identifiers":{"phone":"+1 415 555 0142"}}' | sid_of)
api PATCH "/v1/sessions/$sid/customer" '{"name":"Erin Vale","date_of_birth":"1990-01-02"}' >/dev/null
api POST "/v1/sessions/$sid/turns" '{"speaker":"patient","text":"please forget me"}' >/dev/null
api POST "/v1/sessions/$sid/end" '{"reason":"completed"}' >/dev/null
sid=$(api POST /v1/sessions '{"identifiers":{"phone":"+1 415 555 0142"}}' | sid_of)
api POST "/v1/sessions/$sid/identity/confirm" '{"date_of_birth":"1990-01-02"}' >/dev/null
for p in 1 2; do [ "$(pg_primary $p)" = 200 ] && primary=$p; done
psql_log() { runuser -u postgres -- psql -h 127.0.0.1 -p "1543$primary" -U postgres -d throughline -tAc "$1"; }
erased_at=$(psql_log "SELECT now()")
receipt=$(api POST "/v1/sessions/$sid/erasure" '{}')
echo "$receipt" | grep -q receipt || { log "the erasure was refused: $receipt"; exit 1; }
erasure_pruned=0
for _ in $(seq 50); do
  older=$(psql_log "SELECT count(*) FROM commit_log WHERE tenant = '${tid[$t]}' AND at <= '$erased_at'")
  [ "$older" = 0 ] && { erasure_pruned=1; break; }
  sleep 0.1
done
if [ "$erasure_pruned" = 1 ]; then
  log "erasure: no log record of $t from before it left, $(psql_log "SELECT round(extract(epoch FROM now() - '$erased_at'::timestamptz)::numeric, 2)") s after"
else
  log "erasure: $older log records of $t from before it are still in the log"
  recovered=0
fi

touch "$tmp/stop"
wait "${pid[load]}" || true
unset 'pid[load]'
sleep 2
check=$(python3 scripts/ha/check.py --proxy 127.0.0.1:18443 --domain "$domain" --certs "$tmp/certs" \
  --acked "$tmp/acked.jsonl" --log "$tmp/requests.jsonl" --faults "$tmp/faults.jsonl")
echo "$check" | python3 -c 'import json,sys
c = json.load(sys.stdin)
for f in c["failovers"]: print("  %-28s %s s (tenants: %s)" % (f["fault"], f["seconds"], ", ".join(f["tenants"])))' >&2

# Every tenant's audit chain, exported from its last owner's copy, verified
# whole and as an extension of the checkpoint signed before the cluster started.
chain_ok=1
for t in "${tenants[@]}"; do
  o=$(owner_of "${tid[$t]}")
  # As the node's user, like every command on a data directory (root is refused);
  # the export lands in the node's own directory, then beside the others.
  if ! as_node "${o#n}" audit export --tenant "$t" --out "$tmp/$o/export-$t.jsonl" >"$tmp/$t.export.log" 2>&1 \
    || ! cp "$tmp/$o/export-$t.jsonl" "$tmp/$t.trail.jsonl" \
    || ! "$bin" audit verify "$tmp/$t.trail.jsonl" --checkpoint "$tmp/checkpoints/$t.note" --key "${vkey[$t]}" \
      >"$tmp/$t.verify.log" 2>&1; then
    chain_ok=0
    log "the audit chain of $t did not verify: $(cat "$tmp/$t.export.log" "$tmp/$t.verify.log" | tail -2)"
  fi
done

python3 - "$check" "$stale_refused" "$chain_ok" "$recovered" <<'EOF'
import json, statistics, sys
c, stale, chain, recovered = json.loads(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4] == "1"
node = [f["seconds"] for f in c["failovers"] if f["fault"] in ("kill -9 owner", "SIGSTOP owner", "node cut off")]
p50 = statistics.median(node) if node else float("nan")
line = "ha: acknowledged %d, lost %d, duplicated %d, failover p50 %.1f s max %.1f s" % (
    c["acknowledged"], c["lost"], c["duplicated"], p50, max(node) if node else float("nan"))
if stale:
    line += ", stale owner refused"
if chain:
    line += ", chain verified"
print(line)
ok = c["lost"] == 0 and c["duplicated"] == 0 and stale and chain and recovered and node and max(node) <= 5
sys.exit(0 if ok else 1)
EOF
