#!/usr/bin/env bash
# Benchmark: does one tenant's CPU-burning plugin slow down another tenant's
# calls?
#
# One plugboard, tenant B (b.bench.plugboard.test) routes 500 to the test
# guest echo-info (answers, plays beep + the `hello` prompt, about 2 s, stores
# the caller, hangs up); tenant A (a.bench.plugboard.test) routes 501 to the
# test guest spin (answers, then spins until the host's CPU limit,
# plugin_cpu_ms = 200 by default, stops it; the host then plays its error
# prompt and hangs up). SIPp places B_RATE calls/s into B for B_SECONDS
# (bench/sipp/plugin_call.xml) and the script reports B's call-setup time
# (INVITE with credentials -> 200 OK, per call from SIPp's -trace_shortmsg
# µs timestamps) as p50/p90/p99 in each of PHASES, each with a fresh
# plugboard:
#
#   alone    B's calls only.
#   breaker  plus a second SIPp flooding tenant A with SPIN_RATE calls/s into
#            501 (bench/sipp/spin_call.xml), from FLOOD_LEAD seconds before
#            B's calls to their end. After 3 faults in a row the host
#            disables spin for tenant A (10 s, doubling with every further
#            fault; the calls already spinning when it trips fault one after
#            another, so the backoff reaches its 1 h cap within a second),
#            and A's calls get 503 without running the plugin: this is what
#            the host does with such a flood, and it makes A's load cheap.
#   spread   the same flood spread over SPREAD_TENANTS extra tenants
#            (spin-N.bench.plugboard.test, each with 501 -> spin), each
#            getting at most 2 calls, so that no tenant reaches 3 faults in a
#            row and every flood call really spins: the worst case, what a
#            host without the breaker would see.
#
# A flood phase may name its own rate: "spread@10" floods at 10 calls/s
# (default SPIN_RATE). Each spin call runs ~200 ms of wasm (plugin_cpu_ms),
# so RATE * 0.2 worker-seconds per second against the runtime's worker
# threads (one per core).
#
# For each phase: B's calls/failures and setup-time percentiles, the flood's
# calls and answers (200 = the plugin ran and spun, 503 = disabled), the
# plugin runs and faults from the host's metrics, plugboard's CPU and the
# load average; then p50/p99 ratios against "alone".
#
# Usage (from the repo root): bench/cross_tenant.sh
# Environment: B_RATE=50 B_SECONDS=30 SPIN_RATE=20 FLOOD_LEAD=3
#              PHASES="alone breaker spread@5 spread@10 spread@20"
#              USERS=200 BENCH_KEEP=0 (SPREAD_TENANTS: computed)
# Needs: cargo build --release -p plugboard; scripts/build-plugins.sh; sipp; curl.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

B_RATE="${B_RATE:-50}"
B_SECONDS="${B_SECONDS:-30}"
SPIN_RATE="${SPIN_RATE:-20}"
FLOOD_LEAD="${FLOOD_LEAD:-3}"
PHASES="${PHASES:-alone breaker spread@5 spread@10 spread@20}"
USERS="${USERS:-200}"
A_DOMAIN="a.bench.plugboard.test"
B_DOMAIN="b.bench.plugboard.test"
B_SCENARIO="$REPO_ROOT/bench/sipp/plugin_call.xml"
SPIN_SCENARIO="$REPO_ROOT/bench/sipp/spin_call.xml"
# Flood calls of a phase at rate $1.
flood_calls() { echo $(($1 * (FLOOD_LEAD + B_SECONDS))); }
max_rate=$SPIN_RATE
for ph in $PHASES; do
    [[ "$ph" == *@* ]] && ((${ph#*@} > max_rate)) && max_rate=${ph#*@}
done
# At most 2 flood calls per spread tenant (3 faults in a row trip the breaker).
SPREAD_TENANTS="${SPREAD_TENANTS:-$((($(flood_calls "$max_rate") + 1) / 2))}"

require_built
command -v curl >/dev/null || { echo "curl not installed" >&2; exit 2; }
[[ "$(plugin_name echo-info)" == echo-info && "$(plugin_name spin)" == spin ]] \
    || { echo "unexpected manifest names in target/plugins/{echo-info,spin}" >&2; exit 2; }

# Writes N users (FIRST..) of the tenant being written as config entries, and
# appends them to the SIPp injection file $4 as "ext;[authentication ...];domain".
# $1 = first extension, $2 = count, $3 = domain, $4 = csv path.
users_with_domain() {
    local first=$1 count=$2 domain=$3 csv=$4 ext
    for ((ext = first; ext < first + count; ext++)); do
        printf '[[tenant.user]]\nextension = "%d"\npassword = "pw%d"\n' "$ext" "$ext"
        printf '%d;[authentication username=%d password=pw%d];%s\n' "$ext" "$ext" "$ext" "$domain" >>"$csv"
    done
}

config="$BENCH_DIR/plugboard.toml"
echo "SEQUENTIAL" >"$BENCH_DIR/users_a.csv"
echo "SEQUENTIAL" >"$BENCH_DIR/users_spread.csv"
{
    server_section "40000-47999"
    # echo-info stores the caller in key-value storage: it needs the kv grant.
    plugin_section echo-info kv
    plugin_section spin
    admin_section
    printf '\n[[tenant]]\ndomain = "%s"\n' "$B_DOMAIN"
    users_section 20000 "$USERS" "$BENCH_DIR/users_b.csv"
    printf '[tenant.dialplan]\n"500" = { plugin = "echo-info", config = { greeting = "hello" } }\n'
    printf '\n[[tenant]]\ndomain = "%s"\n' "$A_DOMAIN"
    users_with_domain 10000 "$USERS" "$A_DOMAIN" "$BENCH_DIR/users_a.csv"
    printf '[tenant.dialplan]\n"501" = { plugin = "spin" }\n'
    if [[ " $PHASES " == *" spread"* ]]; then
        for ((t = 0; t < SPREAD_TENANTS; t++)); do
            printf '\n[[tenant]]\ndomain = "spin-%d.bench.plugboard.test"\n' "$t"
            users_with_domain 10000 1 "spin-$t.bench.plugboard.test" "$BENCH_DIR/users_spread.csv"
            printf '[tenant.dialplan]\n"501" = { plugin = "spin" }\n'
        done
    fi
} >"$config"

# Sum of a per-tenant metric over tenants whose domain matches the regex $2.
metric_sum() {
    awk -v m="$1" -v re="$2" '
        index($0, m "{") == 1 && match($0, /tenant="[^"]*"/) {
            d = substr($0, RSTART + 8, RLENGTH - 9)
            if (d ~ re) s += $NF
        }
        END { printf "%d", s }' "$BENCH_DIR/metrics_$3.txt"
}

declare -A P50 P99
# Runs phase $1 (alone, breaker, spread, optionally with @RATE) and prints its rows.
run_phase() {
    local phase=${1//@/_} kind=${1%@*} rate=$SPIN_RATE
    local flood_inf="" flood_pid="" load0 load1v fshort fstat summary n codes p50 p90 p99 max backoffs re
    [[ "$1" == *@* ]] && rate=${1#*@}
    case "$kind" in
        alone) ;;
        breaker) flood_inf="$BENCH_DIR/users_a.csv" ;;
        spread) flood_inf="$BENCH_DIR/users_spread.csv" ;;
        *) echo "unknown phase $1" >&2; exit 2 ;;
    esac
    stop_pbx
    rm -rf "$BENCH_DIR/data"
    start_pbx "$config"
    load0="$(load1)"
    fshort="$BENCH_DIR/short_flood_$phase.log"
    fstat="$BENCH_DIR/stat_flood_$phase.csv"
    if [[ -n "$flood_inf" ]]; then
        timeout $((FLOOD_LEAD + B_SECONDS + 120)) sipp "$PBX_UDP" -sf "$SPIN_SCENARIO" \
            -i 127.0.0.1 -nostdin -inf "$flood_inf" -s 501 \
            -r "$rate" -rp 1000 -m "$(flood_calls "$rate")" -l 5000 \
            -recv_timeout 30000 -timeout $((FLOOD_LEAD + B_SECONDS + 90))s -timeout_error \
            -buff_size 4194304 -trace_stat -stf "$fstat" -fd 1 \
            -trace_err -error_file "$BENCH_DIR/err_flood_$phase.log" \
            -trace_shortmsg -shortmessage_file "$fshort" \
            >"$BENCH_DIR/sipp_flood_$phase.out" 2>&1 &
        flood_pid=$!
        track_bg "$flood_pid"
        sleep "$FLOOD_LEAD"
    fi
    STEP_INF="$BENCH_DIR/users_b.csv" STEP_DOMAIN="$B_DOMAIN"
    sipp_step "$B_RATE" "$B_SECONDS" "b_$phase" "$B_SCENARIO" -s 500 -l 5000 -recv_timeout 15000 \
        -trace_shortmsg -shortmessage_file "$BENCH_DIR/short_b_$phase.log" || exit 1
    load1v="$(load1)"
    if [[ -n "$flood_pid" ]]; then
        wait "$flood_pid" 2>/dev/null || true
        untrack_bg "$flood_pid"
    fi
    curl -sS -m 30 -H "Authorization: Bearer $BENCH_TOKEN" "http://$PBX_ADMIN/v1/metrics" \
        >"$BENCH_DIR/metrics_$phase.txt" || true

    setup_times "$BENCH_DIR/short_b_$phase.log" >"$BENCH_DIR/setup_b_$phase.txt"
    summary="$(setup_summary "$BENCH_DIR/setup_b_$phase.txt" "" "")"
    read -r n codes p50 p90 p99 max <<<"$summary"
    # calls = SIPp's calls created (a call that never got to its second INVITE
    # has no setup time; "none" = no final response before SIPp gave up).
    printf '%-9s B %6d %6d %-24s %7s %7s %7s %8s %6s%% %5s %5s\n' "$phase" \
        "$(stat_col "$BENCH_DIR/stat_b_$phase.csv" TotalCallCreated)" "$R_FAILED" "$codes" \
        "$p50" "$p90" "$p99" "$max" "$R_PBX_CPU" "$load0" "$load1v"
    P50[$1]=$p50 P99[$1]=$p99
    # Setup time of B by 10 s slice of its run (does it drift?): "p50/p99" per slice.
    local t0 slices="" a
    t0="$(awk 'NR == 1 { print $1 }' "$BENCH_DIR/setup_b_$phase.txt")"
    for ((a = 0; a < B_SECONDS; a += 10)); do
        summary="$(setup_summary "$BENCH_DIR/setup_b_$phase.txt" \
            "$(awk -v t="$t0" -v a="$a" 'BEGIN { printf "%.6f", t + a }')" \
            "$( ((a + 10 >= B_SECONDS)) && echo "" || awk -v t="$t0" -v a="$a" 'BEGIN { printf "%.6f", t + a + 10 }')")"
        read -r n codes p50 p90 p99 max <<<"$summary"
        slices+="  ${a}-$( ((a + 10 >= B_SECONDS)) && echo end || echo $((a + 10))s) ${p50}/${p99}"
    done
    echo "          B p50/p99 ms by slice:$slices"
    if [[ -n "$flood_inf" ]]; then
        setup_times "$fshort" >"$BENCH_DIR/setup_flood_$phase.txt"
        summary="$(setup_summary "$BENCH_DIR/setup_flood_$phase.txt" "" "")"
        read -r n codes p50 p90 p99 max <<<"$summary"
        printf '%-9s A %6d %6s %-24s %7s %7s %7s %8s   (%s calls/s)\n' "$phase" \
            "$(stat_col "$fstat" TotalCallCreated)" \
            "$(stat_col "$fstat" 'FailedCall(C)')" "$codes" "$p50" "$p90" "$p99" "$max" "$rate"
        re='^(a|spin-[0-9]+)\.bench\.plugboard\.test$'
        # Disable events and their backoff (s), from the host's event="plugin-disabled" lines.
        backoffs="$(sed 's/\x1b\[[0-9;]*m//g' "$BENCH_DIR/plugboard.log" | grep 'event=.*plugin-disabled' \
            | sed -n 's/.*backoff_s=\([0-9]*\).*/\1/p' | tr '\n' ' ' || true)"
        echo "          A: spin runs $(metric_sum plugboard_plugin_instantiations_total "$re" "$phase"), faults $(metric_sum plugboard_plugin_faults_total "$re" "$phase"), plugin-disabled events $(wc -w <<<"$backoffs") (backoff s: ${backoffs:-none})"
    fi
    cp "$BENCH_DIR/plugboard.log" "$BENCH_DIR/plugboard_$phase.log"
    echo "          B: plugin runs $(metric_sum plugboard_plugin_instantiations_total '^b\.' "$phase"), faults $(metric_sum plugboard_plugin_faults_total '^b\.' "$phase")"
}

echo "plugboard cross-tenant benchmark: B $B_RATE calls/s for $B_SECONDS s; flood into A from ${FLOOD_LEAD} s before (default $SPIN_RATE calls/s); $(nproc) cores, $(date -u +%FT%TZ)"
echo "binary $(stat -c '%y' "$PLUGBOARD_BIN" | cut -d. -f1), spread tenants $SPREAD_TENANTS"
echo "call setup (INVITE with credentials -> final response), ms; cpu = plugboard during B's run (% of one core); load = 1-min load average before/after"
printf '%-9s %-1s %6s %6s %-24s %7s %7s %7s %8s %7s %5s %5s\n' phase t calls failed answers p50 p90 p99 max cpu load0 load1
for phase in $PHASES; do
    run_phase "$phase"
done
stop_pbx
if [[ -n "${P50[alone]:-}" ]]; then
    for phase in $PHASES; do
        [[ "$phase" == alone ]] && continue
        awk -v ph="$phase" -v a50="${P50[alone]}" -v a99="${P99[alone]}" -v b50="${P50[$phase]}" -v b99="${P99[$phase]}" 'BEGIN {
            printf "B with the %s flood / B alone: p50 x%.2f, p99 x%.2f\n", ph, b50 / a50, b99 / a99 }'
    done
fi
