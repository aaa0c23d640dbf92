#!/usr/bin/env bash
# Prints the path of oha (the load generator the benchmark scripts use),
# installing it from crates.io under $HOME/.cache/oha when it is not on PATH.
set -euo pipefail
oha=$(command -v oha || true)
if [ -z "$oha" ]; then
  oha="$HOME/.cache/oha/bin/oha"
  [ -x "$oha" ] || cargo install oha --locked --root "$HOME/.cache/oha" >&2
fi
echo "$oha"
