#!/usr/bin/env bash
# Benchmark: call setup while a plugin's version is swapped under load.
#
# plugboard runs the test plugin "swap" (tests/plugins/swap-v1: answers and
# hangs up after 500 ms) for dial plan entry 600; version 2.0.0
# (tests/plugins/swap-v2: declines with 480) is installed through the CLI, as
# an operator would, and the tenant is pinned to 1.0.0. SIPp
# (bench/sipp/swap_call.xml: INVITE, 407, ACK, INVITE with MD5 digest, then
# 200 + ACK + BYE or 480 + ACK) places RATE calls/s for
# BEFORE_SECONDS + SWAPS * SWAP_INTERVAL + AFTER_SECONDS. After BEFORE_SECONDS
# a background loop switches the tenant's version SWAPS times through the
# admin API, SWAP_INTERVAL seconds apart (PUT .../plugins/swap {"version":
# "2.0.0"}, then POST .../plugins/swap/rollback, in turn).
#
# Call-setup time = the INVITE with credentials to its final response (200 or
# 480), per call from SIPp's -trace_shortmsg timestamps (µs), split by when
# the INVITE was sent: before the first swap request, between the first
# swap request and the last swap's answer, after it; "at-swap" is the subset
# sent while a swap request was in flight or up to 100 ms after its answer.
# Also printed: calls
# placed and failed (SIPp), the answer codes per window, the admin API time
# of the swaps, SIPp's own average of the "setup" response-time partition,
# plugboard's CPU and the load average.
#
# Usage (from the repo root): bench/hotswap.sh
# Environment: RATE=200 BEFORE_SECONDS=10 SWAPS=20 SWAP_INTERVAL=1
#              AFTER_SECONDS=10 USERS=500 BENCH_KEEP=0
# Needs: cargo build --release -p plugboard; scripts/build-plugins.sh; sipp; curl.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE="${RATE:-200}"
BEFORE_SECONDS="${BEFORE_SECONDS:-10}"
SWAPS="${SWAPS:-20}"
SWAP_INTERVAL="${SWAP_INTERVAL:-1}"
AFTER_SECONDS="${AFTER_SECONDS:-10}"
USERS="${USERS:-500}"
SCENARIO="$REPO_ROOT/bench/sipp/swap_call.xml"
TOTAL_SECONDS=$((BEFORE_SECONDS + SWAPS * SWAP_INTERVAL + AFTER_SECONDS))

require_built
command -v curl >/dev/null || { echo "curl not installed" >&2; exit 2; }
[[ "$(plugin_name swap-v1)" == swap && "$(plugin_name swap-v2)" == swap ]] \
    || { echo "target/plugins/swap-v1 and swap-v2 must both be plugin \"swap\"" >&2; exit 2; }

config="$BENCH_DIR/plugboard.toml"
{
    server_section "40000-47999"
    plugin_section swap-v1
    admin_section
    printf '\n[[tenant]]\ndomain = "%s"\n' "$BENCH_DOMAIN"
    users_section 10000 "$USERS" "$BENCH_DIR/users.csv"
    printf '[tenant.dialplan]\n"600" = { plugin = "swap" }\n'
} >"$config"

start_pbx "$config"
[[ -n "$PBX_ADMIN" && "$PBX_ADMIN" != - ]] || { echo "no admin API address in the ready line" >&2; exit 1; }

# Version 2.0.0 arrives through the CLI, as an operator would install it;
# then the tenant is pinned to 1.0.0 (the newest installed would be the default).
timeout 60 "$PLUGBOARD_BIN" --api "http://$PBX_ADMIN" --token "$BENCH_TOKEN" \
    plugin install "$PLUGINS_DIR/swap-v2" >"$BENCH_DIR/install.out" 2>&1 \
    || { echo "plugin install failed:" >&2; cat "$BENCH_DIR/install.out" >&2; exit 1; }
api_path="/v1/tenants/$BENCH_DOMAIN/plugins/swap"
reply="$(admin_api PUT "$api_path" '{"version":"1.0.0"}')"
[[ "$reply" == 200* ]] || { echo "pinning 1.0.0 failed: $reply" >&2; exit 1; }

# The swap loop (background): one line per swap in swaps.log:
# "index sent_epoch done_epoch status wanted_version reply".
swap_loop() {
    local i sent answered reply want
    # Stopped early (stop_bg): end the current sleep too.
    trap 'kill $! 2>/dev/null; exit 0' TERM
    sleep "$BEFORE_SECONDS" & wait $!
    for ((i = 0; i < SWAPS; i++)); do
        sent="$(date +%s.%N)"
        if ((i % 2 == 0)); then
            want=2.0.0
            reply="$(admin_api PUT "$api_path" '{"version":"2.0.0"}')"
        else
            want=1.0.0
            reply="$(admin_api POST "$api_path/rollback")"
        fi
        answered="$(date +%s.%N)"
        echo "$i $sent $answered ${reply%% *} $want ${reply#* }" >>"$BENCH_DIR/swaps.log"
        # Next swap SWAP_INTERVAL after this one was sent.
        sleep "$(awk -v s="$sent" -v d="$answered" -v iv="$SWAP_INTERVAL" 'BEGIN { w = iv - (d - s); printf "%.3f", (w > 0 ? w : 0) }')" &
        wait $!
    done
}

echo "plugboard hot-swap benchmark: $RATE calls/s for $TOTAL_SECONDS s, $SWAPS swaps ${SWAP_INTERVAL} s apart after ${BEFORE_SECONDS} s, $(nproc) cores, $(date -u +%FT%TZ)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$BENCH_DIR/swaps.log"
swap_loop &
track_bg $!
short="$BENCH_DIR/short_swap.log"
sipp_step "$RATE" "$TOTAL_SECONDS" swap "$SCENARIO" -s 600 -l 5000 -recv_timeout 15000 \
    -trace_shortmsg -shortmessage_file "$short" \
    -trace_logs -log_file "$BENCH_DIR/calls_swap.log" || exit 1
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
stop_bg

swaps_ok="$(awk '$4 == 200' "$BENCH_DIR/swaps.log" | wc -l)"
if [[ "$swaps_ok" != "$SWAPS" ]]; then
    echo "only $swaps_ok of $SWAPS swaps answered 200:" >&2
    awk '$4 != 200' "$BENCH_DIR/swaps.log" | cut -c1-300 >&2
fi
first_sent="$(awk 'NR == 1 { print $2 }' "$BENCH_DIR/swaps.log")"
last_done="$(awk 'END { print $3 }' "$BENCH_DIR/swaps.log")"
setup_times "$short" >"$BENCH_DIR/setup_swap.txt"
t0="$(awk 'NR == 1 { print $1 }' "$BENCH_DIR/setup_swap.txt")"

echo "calls placed $(stat_col "$BENCH_DIR/stat_swap.csv" 'TotalCallCreated'), successful $R_OK, failed $R_FAILED, retransmissions $R_RETR, elapsed ${R_EL} s"
echo "plugboard CPU ${R_PBX_CPU}% and SIPp CPU ${R_SIPP_CPU}% of one core; load average after: $load_after"
awk '{ ms = ($3 - $2) * 1000; print ms }' "$BENCH_DIR/swaps.log" | sort -n | awk '
    { v[NR] = $1 } END { if (NR) printf "swaps: %d requests, admin API time median %.1f ms, max %.1f ms\n", NR, v[int((NR + 1) / 2)], v[NR] }'
echo "swaps answered 200: $swaps_ok of $SWAPS"
rt="$(stat_col "$BENCH_DIR/stat_swap.csv" 'ResponseTimesetup(C)')"
echo "SIPp's own average of the \"setup\" partition (whole run, ms resolution): $(awk -v s="$(elapsed_s "${rt:-0:0:0:0}")" 'BEGIN { printf "%.0f ms", s * 1000 }')"
echo "call setup (INVITE with credentials -> 200/480), ms:"
printf '%-7s %-13s %7s %-20s %7s %7s %7s %8s\n' window from-to_s calls answers p50 p90 p99 max
row() {
    local label=$1 from=$2 to=$3 span
    span="$(awk -v t0="$t0" -v f="$from" -v t="$to" 'BEGIN {
        printf "%s-%s", (f == "" ? "0" : sprintf("%.1f", f - t0)), (t == "" ? "end" : sprintf("%.1f", t - t0)) }')"
    setup_summary "$BENCH_DIR/setup_swap.txt" "$from" "$to" | awk -v l="$label" -v s="$span" '{
        printf "%-7s %-13s %7d %-20s %7s %7s %7s %8s\n", l, s, $1, $2, $3, $4, $5, $6 }'
}
row before "" "$first_sent"
row during "$first_sent" "$last_done"
row after "$last_done" ""
row all "" ""
# Calls whose INVITE went out while a swap request was in flight or within
# 100 ms after its answer (a subset of "during").
awk 'NR == FNR { s[NR] = $2; d[NR] = $3 + 0.1; n = NR; next }
     { for (i = 1; i <= n; i++) if ($1 >= s[i] && $1 < d[i]) { print; next } }' \
    "$BENCH_DIR/swaps.log" "$BENCH_DIR/setup_swap.txt" >"$BENCH_DIR/setup_at_swap.txt"
setup_summary "$BENCH_DIR/setup_at_swap.txt" "" "" | awk '{
    printf "%-7s %-13s %7d %-20s %7s %7s %7s %8s\n", "at-swap", "(+100ms)", $1, $2, $3, $4, $5, $6 }'
