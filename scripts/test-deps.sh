#!/usr/bin/env bash
# Installs what the tests need on a Debian machine, only what is missing: the
# real components they run (Postfix, Dovecot, OpenDMARC, Chromium,
# PostgreSQL, etcd, HAProxy, Patroni, Prometheus, ...), the Python venvs
# under $HOME/.cache and the browser tests' npm packages. Run as root, or
# it prints the apt-get command to run. Called by scripts/test and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(build-essential)
command -v make >/dev/null || need+=(make)
command -v perl >/dev/null || need+=(perl)          # vendored OpenSSL's Configure
command -v python3 >/dev/null || need+=(python3)    # tests read stores with Python's sqlite3
command -v grep >/dev/null || need+=(grep)
command -v faketime >/dev/null || need+=(faketime)  # the demo on other dates (libfaketime)
command -v postfix >/dev/null || need+=(postfix)    # the real MTA the LMTP tests deliver through
command -v dovecot >/dev/null || need+=(dovecot-imapd)  # the real IMAP server the IMAP tests read
command -v opendmarc >/dev/null || need+=(opendmarc)   # the real DMARC milter Postfix stamps mail with in tests/mail.rs
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)  # the local DNS publishing example.com's SPF and DMARC for it
command -v python3 >/dev/null && python3 -c 'import smtplib' 2>/dev/null || need+=(python3)
[ -x /usr/bin/chromium ] || need+=(chromium)          # the browser the console test drives
command -v node >/dev/null || need+=(nodejs npm)       # playwright-core and axe-core run on Node
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)  # the real PostgreSQL the commit-log tests append to
command -v systemd-analyze >/dev/null || need+=(systemd)  # the unit files' verify and exposure checks
command -v prometheus >/dev/null || need+=(prometheus) # the real Prometheus the metrics test scrapes with; promtool checks the alert rules
command -v etcd >/dev/null || need+=(etcd-server)      # the real etcd the ownership tests and the chaos harness lease from
command -v etcdctl >/dev/null || need+=(etcd-client)   # the harness reads owner keys with it
command -v haproxy >/dev/null || need+=(haproxy)       # the harness routes by SNI through it
command -v patroni >/dev/null || need+=(patroni)       # the harness's PostgreSQL primary and synchronous standby
command -v nft >/dev/null || need+=(nftables)         # the harness cuts one node off from etcd and PostgreSQL
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need: ${need[*]}" >&2
    echo "install them as root: apt-get update && apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# The FHIR R4 validator the audit tests run (a venv under $HOME/.cache).
bash scripts/fhir-venv.sh >/dev/null
# aiosmtpd, the real SMTP server the outbound-email tests deliver to.
bash scripts/smtp-venv.sh >/dev/null
# Twilio's own Python SDK, which signs the bridge tests' Twilio requests.
bash scripts/platform-venv.sh >/dev/null
# prometheus_client, whose OpenMetrics parser the metrics test reads /metrics with.
bash scripts/ops-venv.sh >/dev/null

# playwright-core (no browser download: it drives Debian's Chromium), axe-core
# and otpauth, pinned by tests/e2e/package-lock.json.
# (again only when the lock file changed since the last install).
if [ ! -f tests/e2e/node_modules/.package-lock.json ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --silent)
fi

