#!/usr/bin/env bash
# Makes tests/fixtures/upgrade/<version>/: a data directory written by this
# build, which every later build must open and migrate (tests/upgrade.rs).
# Run once per release, from the release's own binary, and commit the result:
#
#   cargo build && scripts/upgrade-fixture.sh
#
# What it holds: the demo's whole story (every channel, so the tables are
# filled), its stores in the old page format (HMAC-SHA512, as builds before
# 0.1 made them), a second clinic in the new one (HMAC-SHA256) with its own
# region and zone, and a staff account. Synthetic data only: its passphrase
# is committed beside it on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${THROUGHLINE_BIN:-${CARGO_TARGET_DIR:-target}/debug/throughline}
version=$("$bin" --version | awk '{print $2}')
out=tests/fixtures/upgrade/$version
[ -e "$out" ] && { echo "$out exists: one fixture per release" >&2; exit 1; }
mkdir -p "$out"
THROUGHLINE_NEW_STORES_SHA512=1 "$bin" demo --keep "$out/data" >/dev/null
mv "$out/data.passphrase" "$out/passphrase"
tl() { THROUGHLINE_PASSPHRASE=$(head -n1 "$out/passphrase") "$bin" --data-dir "$out/data" "$@"; }
tl tenant create harbor-clinic --region GB --time-zone Europe/London
pw=$(mktemp)
trap 'rm -f "$pw"' EXIT
echo "fixture front desk password" >"$pw"
tl staff add --tenant sunrise-clinic --email frontdesk@sunrise-clinic.example --role front_desk --password-file "$pw" >/dev/null
rm -f "$out/data/.serving"
echo "wrote $out ($(du -sh "$out" | cut -f1))"
