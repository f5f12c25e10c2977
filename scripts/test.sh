#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the plugins (once) and
# the host, then runs every unit and end-to-end test (real SIPp on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build-plugins.sh
cargo build --release -p plugboard
cargo test --release --workspace
