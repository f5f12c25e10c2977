#!/usr/bin/env bash
# Builds and starts the demo PBX (examples/demo/plugboard.toml) on embedded
# storage. Point a softphone at it: see docs/operator-guide.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build-plugins.sh
cargo build --release -p plugboard
exec target/release/plugboard run --config examples/demo/plugboard.toml "$@"
