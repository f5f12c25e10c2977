#!/usr/bin/env bash
# Benchmark: the caller-ID router example (examples/callerid-router) built in
# Rust, Python and JavaScript, side by side. Per component: size in bytes,
# compile time (`Component::new`), first load through the runtime (compile +
# cache write) and cached load, per-call instantiation time (p50/p90/p99 and
# criterion's estimate), linear memory after instantiation, and memory per
# live instance (RSS and Private_Dirty growth with N instances parked inside
# `transfer`, divided by N). See host/plugins/benches/languages.rs for what
# each figure measures exactly.
#
# Usage (from anywhere): bench/languages.sh [criterion args]
# Env: PLUGBOARD_BENCH_LIVE (live instances for the memory figure, default 50),
#      PLUGBOARD_BENCH_COMPONENTS (name=path,... to bench other components).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/build-examples.sh
echo "languages bench: $(nproc) cores, $(date -u +%FT%TZ)"
export PLUGBOARD_BENCH_COMPONENTS="${PLUGBOARD_BENCH_COMPONENTS:-$(
    for l in rust python javascript; do
        printf '%s=target/plugins/callerid-router-%s/plugin.wasm,' "$l" "$l"
    done
)}"
timeout 1800 cargo bench -p plugboard-plugins --bench languages -- "$@"
