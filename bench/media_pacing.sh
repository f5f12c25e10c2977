#!/usr/bin/env bash
# Benchmark: >= 1,000 concurrent sessions each playing a prompt, p99 deviation
# of the packet interval < 5 ms. Runs the media engine's own load example
# (host/media/examples/pacing_load.rs): SESSIONS sessions play a long prompt
# to loopback receivers that timestamp every packet; it prints the
# distribution of |inter-arrival - 20 ms| and the losses. This measures the
# media engine alone (no SIP, no plugin); see docs/benchmarks.md.
#
# Usage (from the repo root): bench/media_pacing.sh [extra pacing_load flags]
# Environment: SESSIONS=1000 RUN_SECONDS=20 MODE=poll (or block)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SESSIONS="${SESSIONS:-1000}"
RUN_SECONDS="${RUN_SECONDS:-20}"
MODE="${MODE:-poll}"
echo "pacing_load: $SESSIONS sessions, $RUN_SECONDS s, receiver mode $MODE, $(nproc) cores, $(date -u +%FT%TZ)"
# The build (if any) and the run are bounded; the run itself takes RUN_SECONDS + a few.
timeout $((RUN_SECONDS + 900)) cargo run --release -q -p plugboard-media --example pacing_load -- \
    --sessions "$SESSIONS" --seconds "$RUN_SECONDS" --receiver-mode "$MODE" "$@"
