#!/usr/bin/env bash
# Builds every guest (WebAssembly component) crate for wasm32-wasip2, one
# cargo invocation per world (call-flow, screener, listener):
#   plugins/*        (plugboard-attendant, -blocklist, -webhook)
#   tests/plugins/*  (test-plugin-spin, -hog, -trap, -echo-info, ...)
#
# Artifacts (the crate name with '-' -> '_'), then packaged per plugin as
# target/plugins/<crate folder>/{plugin.wasm,plugin.toml}:
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

# One cargo invocation per world: cargo unifies the SDK's features across the
# crates of one build, and a guest must be built with exactly its own world
# (the role in its plugin.toml; crates without a manifest are call flows).
declare -A groups=()
for manifest in plugins/*/Cargo.toml tests/plugins/*/Cargo.toml; do
  [ -f "$manifest" ] || continue
  name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
  [ -n "$name" ] || continue
  role=call-flow
  plugin_toml="$(dirname "$manifest")/plugin.toml"
  if [ -f "$plugin_toml" ]; then
    r=$(sed -n 's/^roles *= *\[ *"\([a-z-]*\)".*/\1/p' "$plugin_toml" | head -n1)
    [ -n "$r" ] && role=$r
  fi
  groups[$role]+=" -p $name"
done
if [ ${#groups[@]} -eq 0 ]; then
  echo "build-plugins: no guest crates found" >&2
  exit 1
fi

for role in "${!groups[@]}"; do
  # shellcheck disable=SC2086
  CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --target wasm32-wasip2 ${groups[$role]} "$@"
done

# Package each guest that has a plugin.toml as target/plugins/<crate folder>/ with
# plugin.wasm + plugin.toml, the layout the host loads (manifest beside the
# component) and `plugboard plugin install DIR` uploads.
target_dir=${CARGO_TARGET_DIR:-target}
for manifest in plugins/*/plugin.toml tests/plugins/*/plugin.toml; do
  [ -f "$manifest" ] || continue
  crate_dir=$(dirname "$manifest")
  crate=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$crate_dir/Cargo.toml" | head -n1)
  out="$target_dir/plugins/$(basename "$crate_dir")"
  mkdir -p "$out"
  cmp -s "$manifest" "$out/plugin.toml" || cp "$manifest" "$out/plugin.toml"
  wasm="$target_dir/wasm32-wasip2/release/${crate//-/_}.wasm"
  cmp -s "$wasm" "$out/plugin.wasm" || cp "$wasm" "$out/plugin.wasm"
  echo "build-plugins: $out"
done
