#!/usr/bin/env bash
# Benchmark: REGISTER with digest authentication (target >= 5,000/s).
#
# Starts plugboard on loopback with USERS users, then drives SIPp
# (bench/sipp/register.xml: REGISTER, 401, REGISTER with MD5 digest, 200)
# at fixed call rates, each step STEP_SECONDS long, then one sustained run
# of SUSTAIN_SECONDS at SUSTAIN_RATE. For every run it prints the offered
# rate, the successful registrations per second actually reached, the
# failed count, SIPp retransmissions, the average REGISTER-to-200 time, the
# CPU use of plugboard and of SIPp (% of one core) and system-wide UDP
# receive-buffer drops.
#
# Usage (from the repo root): bench/register.sh
# Environment: RATES="2000 4000 5000 5500 6000 7000" STEP_SECONDS=10
#              SUSTAIN_RATE=5000 SUSTAIN_SECONDS=25 USERS=2000 BENCH_KEEP=0
# Needs: cargo build --release -p plugboard; sipp.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATES="${RATES:-2000 4000 5000 5500 6000 7000}"
STEP_SECONDS="${STEP_SECONDS:-10}"
SUSTAIN_RATE="${SUSTAIN_RATE:-5000}"
SUSTAIN_SECONDS="${SUSTAIN_SECONDS:-25}"
USERS="${USERS:-2000}"
SCENARIO="$REPO_ROOT/bench/sipp/register.xml"

require_built

config="$BENCH_DIR/plugboard.toml"
{
    server_section "40000-40099"
    printf '\n[[tenant]]\ndomain = "%s"\n' "$BENCH_DOMAIN"
    users_section 10000 "$USERS" "$BENCH_DIR/users.csv"
} >"$config"

# Every run gets a fresh plugboard: after an overloaded step the
# retransmission storm can persist into the next run (seen at 5,000/s right
# after a 7,000/s step).
fresh_pbx() {
    stop_pbx
    rm -rf "$BENCH_DIR/data"
    start_pbx "$config"
}

# One SIPp run at rate $1 for $2 seconds; prints a result row.
run_rate() {
    fresh_pbx
    sipp_step "$1" "$2" "$3" "$SCENARIO" -l 50000 || return 1
    awk -v r="$1" -v s="$2" -v ok="$R_OK" -v f="$R_FAILED" -v rt="$R_RETR" -v el="$R_EL" \
        -v len="$R_LEN" -v pc="$R_PBX_CPU" -v sc="$R_SIPP_CPU" -v d="$R_DROPS" 'BEGIN {
            printf "%8d %5d %9.1f %8d %7d %8d %7.0f %7.1f %7d%% %7d%% %8d\n",
                r, s, el, ok, f, rt, ok / el, len * 1000, pc, sc, d }'
}

echo "plugboard REGISTER benchmark: $USERS users, $(nproc) cores, $(date -u +%FT%TZ)"
printf '%8s %5s %9s %8s %7s %8s %7s %7s %8s %8s %8s\n' \
    rate/s secs elapsed_s ok failed retrans ok/s avg_ms pbx_cpu sipp_cpu udp_drop
for rate in $RATES; do
    run_rate "$rate" "$STEP_SECONDS" "step$rate"
done
echo "sustained run:"
run_rate "$SUSTAIN_RATE" "$SUSTAIN_SECONDS" "sustain$SUSTAIN_RATE"
