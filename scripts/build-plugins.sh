#!/usr/bin/env bash
# Builds every guest (WebAssembly component) crate for wasm32-wasip2 in one
# cargo invocation:
#   plugins/*        (e.g. plugboard-attendant)
#   tests/plugins/*  (test-plugin-spin, -hog, -trap, -echo-info, ...)
#
# Artifacts (the crate name with '-' -> '_'):
#   target/wasm32-wasip2/release/plugboard_attendant.wasm
#   target/wasm32-wasip2/release/test_plugin_spin.wasm       loop {} after answer
#   target/wasm32-wasip2/release/test_plugin_hog.wasm        allocates past the cap
#   target/wasm32-wasip2/release/test_plugin_trap.wasm       panics at once
#   target/wasm32-wasip2/release/test_plugin_echo_info.wasm  answer/play/config/kv/hangup
#
# Debug info is stripped (about 70 KB per component instead of 2.5 MB); this
# only affects the wasm artifacts and their build scripts/proc macros.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null

args=()
for manifest in plugins/*/Cargo.toml tests/plugins/*/Cargo.toml; do
  [ -f "$manifest" ] || continue
  name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
  [ -n "$name" ] && args+=(-p "$name")
done
if [ ${#args[@]} -eq 0 ]; then
  echo "build-plugins: no guest crates found" >&2
  exit 1
fi

CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  cargo build --release --target wasm32-wasip2 "${args[@]}" "$@"

ls -1 target/wasm32-wasip2/release/*.wasm
