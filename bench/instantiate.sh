#!/usr/bin/env bash
# Benchmark: per-call plugin instantiation, target p50 <= 50 µs. Runs the
# criterion bench host/plugins/benches/instantiate.rs (a new store with limits
# and deny-by-default WASI, plus instantiate_pre of the echo-info test guest).
# Criterion reports the mean time per iteration with a confidence interval;
# its estimates are in target/criterion/*/new/estimates.json (median included).
#
# Usage (from the repo root): bench/instantiate.sh
# Needs: scripts/build-plugins.sh (the criterion bench loads the raw component
# target/wasm32-wasip2/release/test_plugin_echo_info.wasm, without its manifest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -f target/wasm32-wasip2/release/test_plugin_echo_info.wasm ]] \
    || { echo "run scripts/build-plugins.sh first" >&2; exit 2; }
echo "instantiate bench: $(nproc) cores, $(date -u +%FT%TZ)"
timeout 1800 cargo bench -p plugboard-plugins --bench instantiate -- "$@"
for f in target/criterion/*/new/estimates.json; do
    [[ -f "$f" ]] || continue
    name="${f#target/criterion/}"; name="${name%/new/estimates.json}"
    python3 -c 'import json,sys
e = json.load(open(sys.argv[1]))
print("%s: median %.2f us, mean %.2f us" % (sys.argv[2], e["median"]["point_estimate"] / 1e3, e["mean"]["point_estimate"] / 1e3))' "$f" "$name" 2>/dev/null || true
done
