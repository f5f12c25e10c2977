#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the plugins and the
# example plugins in Rust, Python and JavaScript (once each) and
# the host, then runs every unit and end-to-end test (real SIPp on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build-plugins.sh
scripts/build-examples.sh
cargo build --release -p plugboard
cargo test --release --workspace
