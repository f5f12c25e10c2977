#!/usr/bin/env bash
# Installs what building and testing plugboard needs on a fresh Debian machine:
# the wasm32-wasip2 Rust target and, for the tests, SIPp (Debian package
# sip-tester) and the baresip softphone.
# Usage: scripts/install-deps.sh [--test]
set -euo pipefail
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
if [ "${1:-}" = "--test" ]; then
  need=()
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v baresip >/dev/null 2>&1 || need+=(baresip)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  fi
fi
