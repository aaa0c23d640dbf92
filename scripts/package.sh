#!/usr/bin/env bash
# Builds Throughline's Debian package with cargo-deb and tests it the way a
# clinic installs it: into a fresh, minimal Debian 12 root (debootstrap from
# Debian's mirror), then, as the service user, init, tenant create, cert
# issue, serve with the packaged configuration, a session opened over mTLS,
# doctor; a command run as root refuses; `dpkg -r` keeps the data and a
# reinstall serves it again. Needs root (chroot, mounts).
#
#   scripts/package.sh            # the .deb from the debug build, tested
#   scripts/package.sh --release  # from a release build (what a clinic installs), tested
#
# Caches outside the clone: cargo-deb under ~/.cache/throughline-tools, the
# Debian root as a tarball under ~/.cache/throughline-debroot.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dev
[ "${1:-}" = "--release" ] && profile=release
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/throughline-target}"
tools=$HOME/.cache/throughline-tools
debroot_cache=$HOME/.cache/throughline-debroot
[ "$(id -u)" = 0 ] || { echo "scripts/package.sh needs root (debootstrap, chroot)" >&2; exit 1; }

command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
if [ ! -x "$tools/bin/cargo-deb" ]; then
  echo "== installing cargo-deb into $tools"
  cargo install --quiet --locked cargo-deb --version '^3' --root "$tools"
fi

echo "== cargo deb ($profile)"
cargo build --quiet -p throughline --profile "$profile"
deb=$("$tools/bin/cargo-deb" -p throughline --no-build --profile "$profile" --fast 2>/dev/null | tail -n1)
[ -f "$deb" ] || { echo "cargo deb made no package" >&2; exit 1; }
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
dpkg-deb --contents "$deb" | awk '{print $1, $2, $6}'

tarball=$debroot_cache/bookworm-minbase.tar
if [ ! -f "$tarball" ]; then
  echo "== debootstrap: a minimal Debian 12 root (cached in $debroot_cache)"
  mkdir -p "$debroot_cache"
  fresh=$(mktemp -d)
  debootstrap --variant=minbase --include=adduser,curl,ca-certificates,procps \
    bookworm "$fresh" http://deb.debian.org/debian >/dev/null
  tar -C "$fresh" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$fresh"
fi

work=$(mktemp -d)
root=$work/root
mkdir "$root"
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  # Anything still running inside the root (nothing should be) goes with it.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  umount -l "$root/proc" "$root/dev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"
chmod 0755 "$root"   # "/" of the root: mktemp made it 0700, which would lock every other user out
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp "$deb" "$root/tmp/throughline.deb"
in_root() { chroot "$root" "$@"; }
# chroot --userspec execs the command itself (runuser would fork and keep a
# parent between us and the server, which a kill would not reach).
as_service() {
  chroot --userspec=throughline:throughline "$root" \
    env HOME=/var/lib/throughline THROUGHLINE_PASSPHRASE="package test passphrase" "$@"
}

echo "== dpkg -i into the fresh root"
in_root dpkg -i /tmp/throughline.deb
in_root stat -c '%U:%G %a %n' /var/lib/throughline /var/backups/throughline /var/lib/throughline-bridge \
  /etc/throughline/bridge /etc/throughline/throughline.toml /etc/throughline/bridge.toml.example \
  /lib/systemd/system/throughline.service /lib/systemd/system/throughline-bridge.service

echo "== as the service user: init, tenant create, cert issue"
as_service throughline init --kdf-memory-mib 19 --kdf-iterations 2
as_service throughline tenant create sunrise-clinic --time-zone America/Los_Angeles
as_service throughline cert issue --tenant sunrise-clinic --channel voice --out /tmp/voice

echo "== as root: refused, naming the command to run instead"
if out=$(in_root env THROUGHLINE_PASSPHRASE=x throughline tenant list 2>&1); then
  echo "a command run as root on the service's data directory was not refused: $out" >&2; exit 1
fi
grep -q "runuser -u throughline -- throughline tenant list" <<<"$out" || { echo "$out" >&2; exit 1; }
echo "refused: $(head -n1 <<<"$out" | cut -c1-100)…"

echo "== serve with the packaged configuration, a session over mTLS"
# Not through the function: `f &` forks a subshell, and $! would be it, not the server.
chroot --userspec=throughline:throughline "$root" \
  env HOME=/var/lib/throughline THROUGHLINE_PASSPHRASE="package test passphrase" \
  throughline serve >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 1 100); do grep -q '^listening on' "$work/serve.out" && break; sleep 0.1; done
cat "$work/serve.out"
grep -q '^listening on https://0.0.0.0:8443' "$work/serve.out" || { cat "$work/serve.log" >&2; exit 1; }
answer=$(in_root curl -sS --cacert /tmp/voice/ca.crt --cert /tmp/voice/client.crt --key /tmp/voice/client.key \
  -H 'content-type: application/json' -d '{"identifiers": {"phone": "+14155550100"}}' https://localhost:8443/v1/sessions)
grep -q '"session_id":"ses_' <<<"$answer" || { echo "no session: $answer" >&2; exit 1; }
echo "session opened: $(grep -o '"session_id":"[^"]*"' <<<"$answer")"

echo "== doctor, as the service user, with the server running"
as_service throughline doctor

kill -TERM "$serve_pid"; wait "$serve_pid" || true; serve_pid=
if ss -ltn | grep -q ':8443 '; then echo "the server is still listening after SIGTERM" >&2; exit 1; fi

echo "== dpkg -r keeps the data; a reinstall serves it again"
in_root dpkg -r throughline
[ ! -e "$root/usr/bin/throughline" ] || { echo "the binary is still there" >&2; exit 1; }
[ -f "$root/var/lib/throughline/keyring.json" ] || { echo "removing the package removed the data" >&2; exit 1; }
in_root dpkg -i /tmp/throughline.deb >/dev/null
as_service throughline tenant list | grep -q '^sunrise-clinic' || { echo "the tenant is gone" >&2; exit 1; }
echo "package test passed: $(basename "$deb")"
