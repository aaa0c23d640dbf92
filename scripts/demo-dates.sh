#!/usr/bin/env bash
# The demo under libfaketime at dates that break date-handling code: years
# ahead, the US spring-forward and fall-back days, a leap day, a year's end.
# Each run must exit 0, and its confirmation email must give the appointment
# in the Pacific abbreviation its date demands (PST or PDT).
#
#   scripts/demo-dates.sh [BINARY]   (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/throughline-target}/debug/throughline}
command -v faketime >/dev/null || { echo "faketime is not installed (Debian package faketime)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# when (UTC) | the abbreviation the next Tuesday 2 PM at the clinic has
cases=(
  "2027-03-14 09:30:00|PDT"   # spring forward: 1:30 AM PST, the story runs across the change
  "2027-11-07 09:30:00|PST"   # fall back: 1:30 AM PST, the second 1:30 of the night
  "2028-02-29 07:00:00|PST"   # a leap day
  "2030-12-31 23:50:00|PST"   # a year's last day, years ahead
  "2031-07-04 12:00:00|PDT"   # summer, years ahead
)
for c in "${cases[@]}"; do
  when=${c%|*}; abbr=${c#*|}
  if ! TZ=UTC faketime "$when" "$bin" demo >"$out" 2>&1; then
    cat "$out"; echo "demo failed at $when" >&2; exit 1
  fi
  line=$(grep -m1 'Your appointment:' "$out" || true)
  echo "  $when UTC: ${line#*| }"
  case "$line" in
    *" $abbr, 30 minutes."*) ;;
    *) echo "the confirmation at $when does not read in $abbr" >&2; exit 1 ;;
  esac
done
