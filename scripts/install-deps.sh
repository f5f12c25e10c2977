#!/usr/bin/env bash
# Installs what building and testing plugboard needs on a fresh Debian machine:
# the wasm32-wasip2 Rust target and, for the tests, SIPp (Debian package
# sip-tester), the baresip softphone, and Python 3 (venv) and Node.js with
# npm, which build the Python and JavaScript example plugins, and openssl
# (the HTTPS webhook test makes its own CA), docker-registry (an OCI
# distribution registry the package tests push to and pull from), and for the
# voicemail tests python3-aiosmtpd (a real SMTP server), slapd and ldap-utils
# (a real LDAP server, started by the tests on loopback with their own
# config) and libespeak-ng1 (text-to-speech, loaded at run time; the host
# runs without it and reports text-to-speech as unavailable).
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
  /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
  [ -x /usr/sbin/slapd ] || need+=(slapd)
  command -v slapadd >/dev/null 2>&1 || [ -x /usr/sbin/slapadd ] || need+=(slapd)
  command -v ldapsearch >/dev/null 2>&1 || need+=(ldap-utils)
  ldconfig -p 2>/dev/null | grep -q 'libespeak-ng.so.1' || need+=(libespeak-ng1)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  fi
fi
