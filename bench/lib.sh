# Shared helpers for the bench/*.sh scripts; sourced, not run.
#
# Every benchmark runs on loopback only, starts its own plugboard process
# from target/release, writes its config, logs and SIPp files into a fresh
# temporary folder, and removes both on exit (set BENCH_KEEP=1 to keep the
# folder for inspection). Every step is bounded in time with `timeout`.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGBOARD_BIN="$REPO_ROOT/target/release/plugboard"
# Packaged plugins (scripts/build-plugins.sh): target/plugins/<crate folder>/
# with plugin.wasm and its plugin.toml manifest beside it.
PLUGINS_DIR="$REPO_ROOT/target/plugins"
BENCH_DOMAIN="bench.plugboard.test"
# Operator token of the admin API (admin_section); loopback only.
BENCH_TOKEN="bench-operator-token-0123456789"
PBX_PID=""
PBX_UDP=""
PBX_ADMIN=""
# Background processes (SIPp, helper loops) started by a script: stopped on exit.
BG_PIDS=()
# Injection file and domain of the next sipp_step (scripts may change them).
STEP_INF=""
STEP_DOMAIN="$BENCH_DOMAIN"

BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/plugboard-bench.XXXXXX")"

bench_cleanup() {
    stop_bg
    stop_pbx
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        echo "kept $BENCH_DIR" >&2
    else
        rm -rf "$BENCH_DIR"
    fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

require_built() {
    if [[ ! -x "$PLUGBOARD_BIN" ]]; then
        echo "missing $PLUGBOARD_BIN: run cargo build --release -p plugboard" >&2
        exit 2
    fi
    command -v sipp >/dev/null || { echo "sipp not installed (package sip-tester)" >&2; exit 2; }
}

# Remembers a background process ($1) for stop_bg / the exit trap.
track_bg() {
    BG_PIDS+=("$1")
}

# Forgets background process $1 (it has been waited for).
untrack_bg() {
    local p keep=()
    for p in "${BG_PIDS[@]}"; do
        [[ "$p" == "$1" ]] || keep+=("$p")
    done
    BG_PIDS=("${keep[@]}")
}

# Stops the background processes this script started (SIGTERM, by pid;
# `timeout` passes it on to its SIPp), then reaps them.
stop_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    BG_PIDS=()
}

# Checks that the packaged plugin target/plugins/$1 exists; prints its
# manifest name.
plugin_name() {
    local dir="$PLUGINS_DIR/$1"
    if [[ ! -f "$dir/plugin.wasm" || ! -f "$dir/plugin.toml" ]]; then
        echo "missing $dir/plugin.wasm or plugin.toml: run scripts/build-plugins.sh" >&2
        exit 2
    fi
    sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/plugin.toml" | head -1
}

# Writes a [plugins.NAME] section for the packaged plugin target/plugins/$1
# (NAME is its manifest name, as the host requires); $2.. = capabilities
# granted to it (e.g. kv). Call plugin_name first (it exits when missing).
plugin_section() {
    local dir="$PLUGINS_DIR/$1" name g list=""
    name="$(plugin_name "$1")"
    printf '\n[plugins.%s]\npath = "%s"\n' "$name" "$dir/plugin.wasm"
    shift
    for g in "$@"; do list+="${list:+, }\"$g\""; done
    [[ -z "$list" ]] || printf 'grants = [%s]\n' "$list"
}

# Writes an [admin] section: the admin API on a free loopback port, with
# $BENCH_TOKEN as the operator token.
admin_section() {
    printf '\n[admin]\nlisten = "127.0.0.1:0"\noperator_token = "%s"\n' "$BENCH_TOKEN"
}

# One admin API request as the operator: $1 = method, $2 = path, $3 = JSON
# body (optional). Prints the HTTP status and the body on one line; at most 30 s.
admin_api() {
    local body="$BENCH_DIR/api_body.$BASHPID" code
    local args=(-sS -m 30 -X "$1" -H "Authorization: Bearer $BENCH_TOKEN" -o "$body" -w '%{http_code}')
    [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data "$3")
    code="$(curl "${args[@]}" "http://$PBX_ADMIN$2" 2>&1)" || code="curl-failed:$code"
    echo "$code $(tr '\n' ' ' 2>/dev/null <"$body")"
    rm -f "$body"
}

# Writes the [server] and [trust] sections of a config to stdout (the
# benchmark plugins are built locally and unsigned: development mode).
# $1 = RTP port range ("lo-hi").
server_section() {
    cat <<EOF
[server]
sip_udp = "127.0.0.1:0"
sip_tcp = "none"
media_ip = "127.0.0.1"
rtp_ports = "$1"
data_dir = "$BENCH_DIR/data"
prompts_dir = "${BENCH_PROMPTS:-$REPO_ROOT/prompts}"
plugin_cache_dir = "$REPO_ROOT/target/plugin-cache"
# SIPp answers only the first challenge, and only MD5.
digest_algorithms = ["MD5", "SHA-256"]

[trust]
allow_unsigned = true
EOF
}

# Writes N users (extensions FIRST..FIRST+N-1, password "pw<ext>") as
# config entries to stdout and as a SIPp injection file to $3, whose field1
# is SIPp's authentication keyword (SIPp does not expand [fieldN] inside
# [authentication ...], but does expand the keyword when it is the field).
# $1 = first extension, $2 = count, $3 = csv path.
users_section() {
    local first=$1 count=$2 csv=$3 ext
    echo "SEQUENTIAL" >"$csv"
    for ((ext = first; ext < first + count; ext++)); do
        printf '[[tenant.user]]\nextension = "%d"\npassword = "pw%d"\n' "$ext" "$ext"
        printf '%d;[authentication username=%d password=pw%d]\n' "$ext" "$ext" "$ext" >>"$csv"
    done
}

# Starts plugboard with config $1 and waits (at most 120 s) for its ready
# line; sets PBX_PID and PBX_UDP. Log in $BENCH_DIR/plugboard.log.
start_pbx() {
    local config=$1 out="$BENCH_DIR/plugboard.out" i
    : >"$out"
    PLUGBOARD_LOG="${PLUGBOARD_LOG:-warn}" \
        "$PLUGBOARD_BIN" run --config "$config" >"$out" 2>"$BENCH_DIR/plugboard.log" &
    PBX_PID=$!
    for ((i = 0; i < 1200; i++)); do
        if grep -q '^plugboard ready' "$out"; then
            PBX_UDP="$(grep '^plugboard ready' "$out" | head -1 | tr ' ' '\n' | sed -n 's/^udp=//p')"
            PBX_ADMIN="$(grep '^plugboard ready' "$out" | head -1 | tr ' ' '\n' | sed -n 's/^admin=//p')"
            echo "plugboard pid $PBX_PID ready on udp $PBX_UDP admin ${PBX_ADMIN:-none}" >&2
            return 0
        fi
        if ! kill -0 "$PBX_PID" 2>/dev/null; then
            echo "plugboard exited before ready; log:" >&2
            tail -20 "$BENCH_DIR/plugboard.log" >&2
            PBX_PID=""
            exit 1
        fi
        sleep 0.1
    done
    echo "plugboard not ready after 120 s" >&2
    exit 1
}

# Stops the plugboard this script started (SIGTERM, then SIGKILL after 10 s).
stop_pbx() {
    local i
    [[ -n "$PBX_PID" ]] || return 0
    kill -TERM "$PBX_PID" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PBX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PBX_PID" 2>/dev/null || true
    wait "$PBX_PID" 2>/dev/null || true
    PBX_PID=""
}

# Reads a column from the last line of a SIPp -trace_stat CSV file.
# $1 = file, $2 = column name (e.g. "SuccessfulCall(C)").
stat_col() {
    awk -F';' -v want="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == want) c = i; next }
        { last = $c }
        END { print last }' "$1"
}

# Converts a SIPp elapsed time "HH:MM:SS:uuuuuu" (or with '.') to seconds.
elapsed_s() {
    echo "$1" | awk -F'[:.]' '{ printf "%.3f", $1 * 3600 + $2 * 60 + $3 + $4 / 1e6 }'
}

# CPU seconds (user+system) used so far by process $1.
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU seconds (user+system) used so far by this shell's finished children
# (SIPp runs as one, so the difference around a run is SIPp's CPU time).
# Sets CHILD_CPU; `times` must run in this shell, not in a $(...) subshell.
children_cpu() {
    times >"$BENCH_DIR/times"
    CHILD_CPU="$(tail -1 "$BENCH_DIR/times" | awk '{
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%.2f", t }')"
}

# System-wide UDP datagrams dropped because a receive buffer was full.
udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# Runs one SIPp load step and collects its figures.
# $1 = rate (calls/s), $2 = seconds, $3 = tag for file names, $4 = scenario,
# the rest = extra SIPp arguments. SIPp gets 4 MiB socket buffers
# (-buff_size; its default of 64 KiB overflows in bursts at these rates). Sets R_OK, R_FAILED, R_RETR, R_EL (s),
# R_LEN (average call length, s), R_PBX_CPU and R_SIPP_CPU (% of one core),
# R_DROPS (system-wide UDP receive-buffer drops during the run). Returns 1
# when SIPp wrote no statistics.
sipp_step() {
    local rate=$1 secs=$2 tag=$3 scenario=$4
    shift 4
    local stat="$BENCH_DIR/stat_$tag.csv" out="$BENCH_DIR/sipp_$tag.out"
    local p0 p1 s0 s1 d0 d1
    rm -f "$stat"
    p0="$(cpu_s "$PBX_PID")"; children_cpu; s0=$CHILD_CPU; d0="$(udp_rcvbuf_errors)"
    # SIPp runs in the background and is waited for, so that an interrupt
    # (Ctrl-C, TERM) stops the script at once and the exit trap stops SIPp:
    # `timeout` puts SIPp in its own process group, out of reach of Ctrl-C.
    timeout $((secs + 90)) sipp "$PBX_UDP" -sf "$scenario" \
        -i 127.0.0.1 -nostdin -key domain "$STEP_DOMAIN" \
        -inf "${STEP_INF:-$BENCH_DIR/users.csv}" \
        -r "$rate" -rp 1000 -m $((rate * secs)) \
        -timeout $((secs + 60))s -timeout_error \
        -buff_size 4194304 -trace_stat -stf "$stat" -fd 1 -trace_err -error_file "$BENCH_DIR/err_$tag.log" "$@" \
        >"$out" 2>&1 &
    local sipp_pid=$!
    track_bg "$sipp_pid"
    wait "$sipp_pid" || true
    untrack_bg "$sipp_pid"
    p1="$(cpu_s "$PBX_PID")"; children_cpu; s1=$CHILD_CPU; d1="$(udp_rcvbuf_errors)"
    if [[ ! -s "$stat" ]]; then
        echo "sipp produced no statistics; output:" >&2
        tail -20 "$out" >&2
        return 1
    fi
    R_OK="$(stat_col "$stat" 'SuccessfulCall(C)')"
    R_FAILED="$(stat_col "$stat" 'FailedCall(C)')"
    R_RETR="$(stat_col "$stat" 'Retransmissions(C)')"
    R_EL="$(elapsed_s "$(stat_col "$stat" 'ElapsedTime(C)')")"
    R_LEN="$(elapsed_s "$(stat_col "$stat" 'CallLength(C)')")"
    R_PBX_CPU="$(awk -v a="$p0" -v b="$p1" -v e="$R_EL" 'BEGIN { printf "%.0f", 100 * (b - a) / e }')"
    R_SIPP_CPU="$(awk -v a="$s0" -v b="$s1" -v e="$R_EL" 'BEGIN { printf "%.0f", 100 * (b - a) / e }')"
    R_DROPS=$((d1 - d0))
    if [[ "$R_FAILED" != 0 ]]; then
        echo "  $R_FAILED failed at $rate/s; SIPp errors by kind (count, message):" >&2
        # SIPp runs some entries together: split before each timestamp.
        sed -E 's/([^\n])(20[0-9]{2}-[0-9]{2}-[0-9]{2}\t)/\1\n\2/g' "$BENCH_DIR/err_$tag.log" 2>/dev/null \
            | grep -aE '^[0-9]{4}-[0-9]{2}-[0-9]{2}' | grep -av 'Discarding message' \
            | sed -E "s/^[^:]*:[^:]*:[^:]*: //; s/Call-Id '[^']*'//; s/Dead call [^ ]*/Dead call/" \
            | cut -c1-150 | sort | uniq -c | sort -rn | head -6 >&2 || true
        echo "  plugboard log, last 5 warnings:" >&2
        grep -iE 'warn|error' "$BENCH_DIR/plugboard.log" | tail -5 | cut -c1-300 >&2 || true
    fi
}

# Call-setup times from a SIPp -trace_shortmsg file ($1): for every call, the
# INVITE with credentials (CSeq 2, its first transmission) to the first final
# response to it, from SIPp's microsecond timestamps (so SIPp's own scheduling
# is included). Prints one line per call: "send_epoch_s setup_ms status".
# A call with no final response is printed with status "none" and no time
# counted (setup_ms = -1).
setup_times() {
    awk -F'\t' '$6 == "CSeq:2 INVITE" {
        id = $5
        if ($4 == "S") { if (!(id in sent)) { sent[id] = $3; order[++n] = id } }
        else if ($4 == "R" && !(id in code)) {
            split($7, w, " ")
            if (w[2] + 0 >= 200) { code[id] = w[2]; got[id] = $3 }
        }
    }
    END {
        for (i = 1; i <= n; i++) {
            id = order[i]
            if (id in code) printf "%.6f %.3f %s\n", sent[id], (got[id] - sent[id]) * 1000, code[id]
            else printf "%.6f -1 none\n", sent[id]
        }
    }' "$1"
}

# Summary of setup_times output ($1) for calls sent in [$2, $3) (epoch
# seconds; "" = unbounded): prints "calls answered_by_code p50 p90 p99 max"
# where answered_by_code is like "200:1234,480:567", times in ms
# (nearest-rank percentiles over calls that got a final response).
setup_summary() {
    local tmp
    tmp="$(mktemp "$BENCH_DIR/lat.XXXXXX")"
    awk -v from="${2:-0}" -v to="${3:-1e12}" '
        $1 >= from && $1 < to {
            calls++; codes[$3]++
            if ($2 >= 0) print $2 > "/dev/stderr"
        }
        END {
            s = ""
            for (c in codes) s = s (s == "" ? "" : ",") c ":" codes[c]
            printf "%d %s\n", calls, (s == "" ? "-" : s)
        }' "$1" 2>"$tmp" | {
        read -r calls codes
        sort -n "$tmp" | awk -v calls="$calls" -v codes="$codes" '
            function pick(q,   i) { i = int(q * NR); if (i < q * NR) i++; if (i < 1) i = 1; return v[i] }
            { v[NR] = $1 }
            END {
                if (NR == 0) { printf "%d %s - - - -\n", calls, codes; exit }
                printf "%d %s %.2f %.2f %.2f %.2f\n", calls, codes, pick(0.5), pick(0.9), pick(0.99), v[NR]
            }'
    }
    rm -f "$tmp"
}

# Load average (1 min) now.
load1() {
    cut -d' ' -f1 /proc/loadavg
}
