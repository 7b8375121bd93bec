#!/usr/bin/env bash
# Relay benchmark: m365-mailer relay (SQLite queue, and PostgreSQL queue) against Postfix (as a
# relay, normal fsync durability) and email-oauth2-proxy (from PyPI), same machine, same run, same
# load. Installs the peers and PostgreSQL, starts a private PostgreSQL server (.ci/postgres),
# builds the release binary, runs `cargo bench --bench relay`, and writes the table into
# docs/benchmarks.md. Runs Postfix as a private instance under /opt/m365-mailer-bench: needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/postfix ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postfix >/dev/null
fi
# Installed "No configuration", Postfix has no main.cf; the private instance needs the default one
# to name its own directory in.
[ -f /etc/postfix/main.cf ] || $sudo cp /etc/postfix/main.cf.proto /etc/postfix/main.cf
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
/usr/sbin/postconf -d mail_version
postgres_dir="$(mktemp -d)"
trap '.ci/postgres stop "$postgres_dir" || true; rm -rf "$postgres_dir"' EXIT
eval "$(.ci/postgres start "$postgres_dir")"
psql --version
if [ ! -x target/bench-venv/bin/python ]; then
  python3 -m venv target/bench-venv
fi
target/bench-venv/bin/python -m pip install --quiet --disable-pip-version-check 'emailproxy==2026.7.3'
target/bench-venv/bin/python -m pip show emailproxy | sed -n 2p
cargo build --release --bin m365-mailer
cargo bench --bench relay
