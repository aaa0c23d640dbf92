#!/usr/bin/env bash
# Schemathesis against the real server over mutual TLS: the OpenAPI document
# the server serves, every operation, with each channel's certificate.
# Checks: no 5xx, every response matches its documented status, content type
# and schema (the error shape included), invalid input is refused, valid
# input is accepted.
#
#   scripts/fuzz-api.sh [EXAMPLES_PER_OPERATION=60] [SEED=1]
#
# Uses the debug build in $CARGO_TARGET_DIR (builds it if missing). Exits
# non-zero on any failure; the server's log is printed when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-60}
seed=${2:-1}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/throughline-target}"
cargo build --quiet
bin="$CARGO_TARGET_DIR/debug/throughline"
st=$(bash scripts/schemathesis-venv.sh)

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export THROUGHLINE_PASSPHRASE="fuzz passphrase, not a secret"
t() { "$bin" --data-dir "$tmp/d" "$@" >/dev/null; }
t init --kdf-memory-mib 19 --kdf-iterations 2
t tenant create sunrise --time-zone America/Los_Angeles
for ch in voice chat email; do t cert issue --tenant sunrise --channel "$ch" --out "$tmp/$ch"; done
"$bin" --data-dir "$tmp/d" serve --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/out" && break; sleep 0.1; done
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/out")
base="https://localhost:$port"
curl -sf --cacert "$tmp/voice/ca.crt" --cert "$tmp/voice/client.crt" --key "$tmp/voice/client.key" \
  "$base/openapi.json" >"$tmp/openapi.json"

# A new patient per channel, with a session and an appointment to aim at.
call() { curl -s --cacert "$tmp/$1/ca.crt" --cert "$tmp/$1/client.crt" --key "$tmp/$1/client.key" \
  -H 'content-type: application/json' "${@:2}"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin).get('$1') or '')"; }
declare -A who=([voice]='{"phone":"+1 415 555 0101"}' [chat]='{"phone":"+1 415 555 0102"}' [email]='{"email":"fuzz@example.com"}')

# An appointment a month from now, in UTC (always in the clinic's offset rule).
in_a_month=$(date -u -d '+30 days' +%Y-%m-%dT10:00:00Z)

status=0
for ch in voice chat email; do
  export FUZZ_SESSION_ID FUZZ_APPOINTMENT_ID
  FUZZ_SESSION_ID=$(call "$ch" -X POST "$base/v1/sessions" -d "{\"identifiers\": ${who[$ch]}}" | field session_id)
  FUZZ_APPOINTMENT_ID=$(call "$ch" -X POST "$base/v1/sessions/$FUZZ_SESSION_ID/appointments" \
    -d "{\"starts_at\": \"$in_a_month\"}" | field id)
  FUZZ_APPOINTMENT_ID=${FUZZ_APPOINTMENT_ID:-apt_00000000000000000000000000000000}
  echo "== schemathesis as the $ch channel: $examples examples per operation, seed $seed"
  "$st" --config-file scripts/schemathesis.toml run "$tmp/openapi.json" --url "$base" --no-color \
    --request-cert "$tmp/$ch/client.crt" --request-cert-key "$tmp/$ch/client.key" --tls-verify "$tmp/$ch/ca.crt" \
    --checks all --max-examples "$examples" --seed "$seed" --workers 1 \
    --generation-database none --output-truncate true --report junit --report-junit-path "$tmp/junit-$ch.xml" \
    >"$tmp/st-$ch.txt" 2>&1 || { status=1; grep -v "^Reproduce\|^    curl" "$tmp/st-$ch.txt" | sed -n "/= \(FAILURES\|ERRORS\) =/,/= SUMMARY =/p" | cut -c1-400 | head -80; }
  grep -E "^Test cases:|generated|^  (❌|🚫|⚠️)" "$tmp/st-$ch.txt" | cut -c1-200 || true
  [ -f "$tmp/junit-$ch.xml" ] && python3 - "$tmp/junit-$ch.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
tests = sum(int(s.get("tests", 0)) for s in suites)
fail = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(f"   operations tested {tests}, failing {fail}")
PY
done
# actix_http logs malformed request heads (sent on purpose) at ERROR; any
# other error line is ours and fails the run.
if grep '"level":"ERROR"' "$tmp/log" | grep -v '"target":"actix_http::h1::dispatcher"' | grep -q .; then
  echo "== server logged errors:"
  grep '"level":"ERROR"' "$tmp/log" | grep -v '"target":"actix_http::h1::dispatcher"' | head -20
  status=1
fi
[ "$status" -eq 0 ] || { echo "== server log tail:"; tail -20 "$tmp/log"; }
exit "$status"
