#!/usr/bin/env bash
# Benchmark: calls answered by a plugin (target >= 500 calls/s for 60 s, 0 failed).
#
# Every call: SIPp (bench/sipp/plugin_call.xml) sends an INVITE, answers
# the 407 digest challenge, gets 200 and ACKs; the plugin (the test guest
# echo-info) answers, plays the stock `beep` (0.3 s) and a generated 0.7 s
# prompt (so about 1 s of audio, paced in real time), writes one kv entry and
# hangs up; SIPp answers the BYE. Prompts come from a temporary copy of
# prompts/ with the extra prompt added; nothing is written under prompts/.
#
# calls/s = successful calls / (elapsed - average call length): the rate at
# which calls were started and completed, without the last call's tail.
# udp_drop here is mostly plugboard's RTP piling up at SIPp's media port,
# which SIPp binds but does not read; it says nothing about SIP.
#
# Each run starts a fresh plugboard. Rate steps of STEP_SECONDS each find where failures start, then one
# SUSTAIN_SECONDS run at the highest step rate that had no failures, and one
# at SUSTAIN_RATE (500/s) if that is a different rate.
#
# Usage (from the repo root): bench/plugin_calls.sh
# Environment: RATES="250 500 750 1000" STEP_SECONDS=15
#              SUSTAIN_RATE=500 SUSTAIN_SECONDS=60 USERS=1000 BENCH_KEEP=0
# Needs: cargo build --release -p plugboard; scripts/build-plugins.sh; sipp.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATES="${RATES:-250 500 750 1000}"
STEP_SECONDS="${STEP_SECONDS:-15}"
SUSTAIN_RATE="${SUSTAIN_RATE:-500}"
SUSTAIN_SECONDS="${SUSTAIN_SECONDS:-60}"
USERS="${USERS:-1000}"
SCENARIO="$REPO_ROOT/bench/sipp/plugin_call.xml"

require_built
# The packaged test guest (target/plugins/echo-info/{plugin.wasm,plugin.toml}).
PLUGIN="$(plugin_name echo-info)"

# Little-endian 32-bit integer as printf escapes.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }

# Writes a WAV file of $2 milliseconds of silence (8 kHz, 16-bit, mono) to $1.
write_silence_wav() {
    local bytes=$((8000 * 2 * $2 / 1000))
    {
        printf "RIFF$(le32 $((36 + bytes)))WAVEfmt "
        printf "$(le32 16)\\x01\\x00\\x01\\x00$(le32 8000)$(le32 16000)\\x02\\x00\\x10\\x00"
        printf "data$(le32 "$bytes")"
        head -c "$bytes" /dev/zero
    } >"$1"
}

export BENCH_PROMPTS="$BENCH_DIR/prompts"
mkdir -p "$BENCH_PROMPTS/en"
cp -r "$REPO_ROOT/prompts/en/." "$BENCH_PROMPTS/en/"
write_silence_wav "$BENCH_PROMPTS/en/bench-700ms.wav" 700

config="$BENCH_DIR/plugboard.toml"
{
    server_section "40000-49999"
    # echo-info stores the caller in key-value storage: it needs the kv grant.
    plugin_section echo-info kv
    printf '\n[[tenant]]\ndomain = "%s"\n' "$BENCH_DOMAIN"
    users_section 10000 "$USERS" "$BENCH_DIR/users.csv"
    printf '[tenant.dialplan]\n"700" = { plugin = "%s", config = { greeting = "bench-700ms" } }\n' "$PLUGIN"
} >"$config"

# Every run gets a fresh plugboard (and an empty data folder): an overloaded
# step leaves a backlog of calls that would otherwise fail the next run.
fresh_pbx() {
    stop_pbx
    rm -rf "$BENCH_DIR/data"
    start_pbx "$config"
}

# One SIPp run at rate $1 for $2 seconds; prints a result row and returns
# 0 when every call succeeded.
run_rate() {
    fresh_pbx
    sipp_step "$1" "$2" "$3" "$SCENARIO" -s 700 -l 20000 -recv_timeout 15000 || return 1
    awk -v r="$1" -v s="$2" -v ok="$R_OK" -v f="$R_FAILED" -v rt="$R_RETR" -v el="$R_EL" \
        -v len="$R_LEN" -v pc="$R_PBX_CPU" -v sc="$R_SIPP_CPU" -v d="$R_DROPS" 'BEGIN {
            printf "%8d %5d %9.1f %8d %7d %8d %7.0f %7.0f %7d%% %7d%% %8d\n",
                r, s, el, ok, f, rt, ok / (el - len), len * 1000, pc, sc, d }'
    [[ "$R_FAILED" == 0 ]]
}

header() {
    printf '%8s %5s %9s %8s %7s %8s %7s %7s %8s %8s %8s\n' \
        rate/s secs elapsed_s ok failed retrans calls/s avg_ms pbx_cpu sipp_cpu udp_drop
}

echo "plugboard plugin-call benchmark: ~1 s prompt per call, $(nproc) cores, $(date -u +%FT%TZ)"
header
best=0
for rate in $RATES; do
    if run_rate "$rate" "$STEP_SECONDS" "step$rate"; then
        ((rate > best)) && best=$rate
    fi
done
echo "highest step rate with 0 failures: $best/s"
if ((best > 0)); then
    echo "sustained run at $best/s:"
    header
    run_rate "$best" "$SUSTAIN_SECONDS" "sustain$best" || true
fi
if ((best != SUSTAIN_RATE)); then
    echo "sustained run at $SUSTAIN_RATE/s:"
    header
    run_rate "$SUSTAIN_RATE" "$SUSTAIN_SECONDS" "sustain$SUSTAIN_RATE" || true
fi
echo "plugboard log lines at warn or above: $(grep -ciE 'warn|error' "$BENCH_DIR/plugboard.log" || true)"
