#!/usr/bin/env bash
# Installs what building and testing plugboard needs on a fresh Debian machine:
# the wasm32-wasip2 Rust target and, for the tests, SIPp (Debian package
# sip-tester), the baresip softphone, and Python 3 (venv) and Node.js with
# npm, which build the Python and JavaScript example plugins, and openssl
# (the HTTPS webhook test makes its own CA), and docker-registry (an OCI
# distribution registry the package tests push to and pull from).
# Usage: scripts/install-deps.sh [--test]
set -euo pipefail
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
if [ "${1:-}" = "--test" ]; then
  need=()
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v baresip >/dev/null 2>&1 || need+=(baresip)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  fi
fi
