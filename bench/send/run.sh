#!/usr/bin/env bash
# Sending benchmark: round trips per message on one connection, and one `send` with a cached
# token against msmtp given the same token, both against the emulator with 20 ms of latency.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v msmtp >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq msmtp >/dev/null
fi
msmtp --version | head -1
cargo bench --bench send
