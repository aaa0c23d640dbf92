#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) and prints, per
# target, executions, corpus size and whether it found anything.
#
#   scripts/fuzz-targets.sh [SECONDS=60] [TARGET...]
#
# Needs a nightly toolchain; installs cargo-fuzz under $HOME/.cache if absent.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
export PATH="$HOME/.cache/cargo-fuzz/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --root "$HOME/.cache/cargo-fuzz"
export CARGO_TARGET_DIR="${THROUGHLINE_FUZZ_TARGET:-$HOME/.cache/throughline-fuzz-target}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(email_message json_bodies identifiers audit_export backup_container policy_file)
mkdir -p corpus/email_message
cp ../tests/email_corpus/*.eml corpus/email_message/ 2>/dev/null || true
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    verdict="clean"
  else
    verdict="FOUND A FAILURE (see fuzz/artifacts/$t)"; status=1
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -5
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  printf '%-18s %6ss  %12s execs  corpus %5s files  %s\n' "$t" "$secs" "${execs:-?}" "$(ls "corpus/$t" | wc -l)" "$verdict"
  rm -f "$log"
done
exit "$status"
