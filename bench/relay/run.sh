#!/usr/bin/env bash
# Relay benchmark: m365-mailer relay against Postfix (as a relay, normal fsync durability) and
# email-oauth2-proxy (from PyPI), same machine, same run, same load. Installs the peers, builds
# the release binary, runs `cargo bench --bench relay`, and writes the table into
# docs/benchmarks.md. Runs Postfix as a private instance under /opt/m365-mailer-bench: needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/postfix ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postfix >/dev/null
fi
/usr/sbin/postconf -d mail_version
if [ ! -x target/bench-venv/bin/python ]; then
  python3 -m venv target/bench-venv
fi
target/bench-venv/bin/python -m pip install --quiet --disable-pip-version-check 'emailproxy==2026.7.3'
target/bench-venv/bin/python -m pip show emailproxy | sed -n 2p
cargo build --release --bin m365-mailer
cargo bench --bench relay
