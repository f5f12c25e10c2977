#!/usr/bin/env bash
# Benchmark: voicemail deposits per minute, 10-second messages with real RTP
# (compared with the 4,000 deposits/min of the source documents, 66.7/s).
#
# Every call is a peer PBX's call diverted to voicemail: SIPp, bound to the
# tenant's trunk address (tests/e2e/sipp/vm_trunk_deposit.xml, no digest),
# sends INVITE 800 with `Diversion: <sip:MAILBOX@...>;reason=no-answer`
# (MAILBOX cycles through MAILBOXES numbers from 2000, `any_mailbox = true`),
# gets 200 and ACKs, then plays an RTP capture: key 0 at 0.8 s (RFC 4733,
# skips the greeting), 10 s of a PCMA tone from 2.5 s (the message, 50
# packets/s), and hangs up at 13 s. The voicemail plugin answers, plays the
# greeting until the key, the beep, records until the BYE, stores the message
# (kv + a 160 KB WAV), updates the MWI counts and sends the message-waiting
# NOTIFY to the trunk (answered by the same SIPp, -oocsf
# tests/e2e/sipp/vm_notify_uas.xml). Mail is off (no SMTP server in the loop).
#
# `ok` counts SIPp's successful calls, `stored` the WAV files the plugin left
# (one per message) and `10s` those of 9.5-10.5 s; a step passes when no
# call failed and every call left a whole message (10s = ok).
# deposits/min = successful calls / (elapsed - average call length) x 60.
# setup p50/p99 = INVITE to 200 OK (SIPp -trace_shortmsg time stamps).
# pbx_cpu / sipp_cpu = CPU time over the run's elapsed time (100% = one core);
# load = the 1-minute load average when the run started (the box is shared).
#
# Rate steps of STEP_SECONDS each (stopping after the first step that does
# not pass), then one SUSTAIN_SECONDS run at the highest passing step rate.
# Each run starts a fresh plugboard.
#
# Usage (from the repo root): bench/voicemail.sh
# Environment: RATES="10 20 40 67 80 100" STEP_SECONDS=30 SUSTAIN_SECONDS=60
#              MAILBOXES=1000 MESSAGE_SECONDS=10 SIPP_NICE=0 BENCH_KEEP=0
# SIPP_NICE=N runs SIPp (and its ~1,000 pcap-playing threads at these rates)
# at nice N, so that plugboard gets the CPU first on a box shared with it.
# Needs: cargo build --release -p plugboard; scripts/build-plugins.sh; sipp
# (with pcap play: sip-tester); /usr/bin/python3.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATES="${RATES:-10 20 40 67 80 100}"
STEP_SECONDS="${STEP_SECONDS:-30}"
SUSTAIN_SECONDS="${SUSTAIN_SECONDS:-60}"
MAILBOXES="${MAILBOXES:-1000}"
MESSAGE_SECONDS="${MESSAGE_SECONDS:-10}"
SIPP_NICE="${SIPP_NICE:-0}"
SIPP_DIR="$REPO_ROOT/tests/e2e/sipp"
SCENARIO="$SIPP_DIR/vm_trunk_deposit.xml"

require_built
PLUGIN="$(plugin_name voicemail)"

# A free loopback UDP port for the trunk (SIPp binds it for every run).
TRUNK_PORT="$(/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# The caller's RTP capture (what servers::RtpScript writes in the e2e tests):
# one silent packet at 0, key 0 at 0.8 s, MESSAGE_SECONDS of a 440 Hz tone
# from 2.5 s, in PCMA, 20 ms packets, one SSRC.
AUDIO="$BENCH_DIR/deposit.pcap"
/usr/bin/python3 - "$AUDIO" "$MESSAGE_SECONDS" <<'EOF'
import math, struct, sys

path, secs = sys.argv[1], int(sys.argv[2])

def alaw(sample):
    pcm = sample >> 3
    if pcm >= 0:
        sign = 0xD5
    else:
        sign, pcm = 0x55, -pcm - 1
    pcm = min(pcm, 0xFFF)
    seg = next((s for s, top in enumerate([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF]) if pcm <= top), 7)
    mant = (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return ((seg << 4) | mant) ^ sign

packets = [(0, 8, True, 0, bytes([0xD5] * 160))]
at = 800
for i in range(5):
    packets.append(((at + 20 * i) * 1000, 101, i == 0, at * 8, bytes([0, 10]) + struct.pack(">H", 160 * (i + 1))))
for r in range(3):
    packets.append(((at + 100) * 1000 + r, 101, False, at * 8, bytes([0, 0x80 | 10]) + struct.pack(">H", 800)))
tone = bytes(alaw(int(math.sin(n / 8000 * 440 * 2 * math.pi) * 10000)) for n in range(8000))
for f in range(secs * 50):
    t = 2500 + 20 * f
    off = (t * 8) % 8000
    payload = (tone + tone)[off:off + 160]
    packets.append((t * 1000, 8, f == 0, t * 8, payload))
packets.sort(key=lambda p: p[0])

def ip_header(length):
    h = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, length, 0, 0x4000, 64, 17, 0,
                              bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])))
    s = sum(struct.unpack(">10H", bytes(h)))
    s = (s & 0xFFFF) + (s >> 16)
    h[10:12] = struct.pack(">H", ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF)
    return bytes(h)

with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for seq, (us, pt, marker, ts, payload) in enumerate(packets):
        rtp = struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | pt, (1000 + seq) & 0xFFFF, ts & 0xFFFFFFFF, 0x1234ABCD) + payload
        udp = struct.pack(">HHHH", 6002, 6000, 8 + len(rtp), 0) + rtp
        frame = bytes(12) + b"\x08\x00" + ip_header(20 + len(udp)) + udp
        at = 1_700_000_000 * 1_000_000 + us
        f.write(struct.pack("<IIII", at // 1_000_000, at % 1_000_000, len(frame), len(frame)))
        f.write(frame)
EOF
HOLD_MS=$((2500 + MESSAGE_SECONDS * 1000 + 500))

# Diverted-from numbers (mailboxes), reason, caller.
STEP_INF="$BENCH_DIR/mailboxes.csv"
{
    echo "SEQUENTIAL"
    for ((i = 0; i < MAILBOXES; i++)); do
        printf '%d;no-answer;%d\n' $((2000 + i)) $((5550000 + i))
    done
} >"$STEP_INF"

config="$BENCH_DIR/plugboard.toml"
{
    server_section "30000-49999"
    # Mail and the directory are granted but not configured for the tenant.
    plugin_section voicemail kv recordings mwi mail directory
    printf '\n[[tenant]]\ndomain = "%s"\n' "$BENCH_DOMAIN"
    printf '\n[[tenant.trunk]]\nname = "bench-peer"\naddress = "127.0.0.1:%s"\nmwi = true\n' "$TRUNK_PORT"
    printf '\n[tenant.dialplan."800"]\nplugin = "%s"\n' "$PLUGIN"
    printf '[tenant.dialplan."800".config]\nany_mailbox = true\nmin_length_s = 2\nmax_length_s = 120\n'
    printf 'silence_s = 0\nwelcome_mail = false\nemail_mode = "off"\n'
} >"$config"

fresh_pbx() {
    stop_pbx
    rm -rf "$BENCH_DIR/data"
    start_pbx "$config"
}

# Messages stored by the plugin: "<files> <files of 9.5-10.5 s>".
stored_messages() {
    /usr/bin/python3 - "$BENCH_DIR/data/recordings/$BENCH_DOMAIN/$PLUGIN" "$MESSAGE_SECONDS" <<'EOF'
import os, struct, sys
folder, secs = sys.argv[1], int(sys.argv[2])
files = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".wav")] if os.path.isdir(folder) else []
good = 0
for p in files:
    with open(p, "rb") as f:
        b = f.read()
    i, rate, align, data = 12, 0, 0, 0
    while i + 8 <= len(b):
        cid, n = b[i:i + 4], struct.unpack("<I", b[i + 4:i + 8])[0]
        if cid == b"fmt ":
            rate, align = struct.unpack("<I", b[i + 12:i + 16])[0], struct.unpack("<H", b[i + 20:i + 22])[0]
        elif cid == b"data":
            data = n
        i += 8 + n + (n & 1)
    if rate and align and abs(data / align / rate - secs) <= 0.5:
        good += 1
print(len(files), good)
EOF
}

# One run at rate $1 for $2 seconds; prints a row, returns 0 when every call succeeded.
run_rate() {
    local rate=$1 secs=$2 tag=$3 short="$BENCH_DIR/short_$3.log" lat stored load
    fresh_pbx
    rm -f "$short"
    load="$(load1)"
    # SIPp inherits this shell's niceness (plugboard was started before).
    renice -n "$SIPP_NICE" -p $$ >/dev/null
    sipp_step "$rate" "$secs" "$tag" "$SCENARIO" -s 800 -p "$TRUNK_PORT" -l 20000 \
        -key audio "$AUDIO" -set hold "$HOLD_MS" -oocsf "$SIPP_DIR/vm_notify_uas.xml" \
        -recv_timeout 30000 -trace_shortmsg -shortmessage_file "$short" || { renice -n 0 -p $$ >/dev/null; return 1; }
    renice -n 0 -p $$ >/dev/null
    # Let the last deposits finish storing.
    sleep 2
    setup_times "$short" >"$BENCH_DIR/setup_$tag.txt"
    lat="$(setup_summary "$BENCH_DIR/setup_$tag.txt" "" "")"
    stored="$(stored_messages)"
    awk -v r="$rate" -v s="$secs" -v ok="$R_OK" -v f="$R_FAILED" -v rt="$R_RETR" -v el="$R_EL" \
        -v len="$R_LEN" -v pc="$R_PBX_CPU" -v sc="$R_SIPP_CPU" -v lat="$lat" -v st="$stored" \
        -v load="$load" 'BEGIN {
            split(lat, l, " "); split(st, m, " ")
            printf "%6d %6d %5d %8d %6d %7d %7d %6d %8.0f %7.1f %6s %6s %7.1f %6d%% %6d%% %5s\n",
                r, r * 60, s, ok, f, rt, m[1], m[2], ok / (el - len) * 60, len, l[3], l[5], el, pc, sc, load }'
    # A deposit fails when SIPp's call failed or its message is missing or
    # not about MESSAGE_SECONDS long.
    [[ "$R_FAILED" == 0 && "${stored#* }" -ge "$R_OK" ]]
}

header() {
    printf '%6s %6s %5s %8s %6s %7s %7s %6s %8s %7s %6s %6s %7s %7s %7s %5s\n' \
        rate/s per_min secs ok failed retrans stored 10s dep/min avg_s p50_ms p99_ms elapsed pbx_cpu sipp_cpu load
}

echo "plugboard voicemail deposits: ${MESSAGE_SECONDS} s messages with RTP, $MAILBOXES mailboxes, SIPp at nice $SIPP_NICE, $(nproc) cores, $(date -u +%FT%TZ)"
header
best=0
for rate in $RATES; do
    if run_rate "$rate" "$STEP_SECONDS" "step$rate"; then
        ((rate > best)) && best=$rate
    else
        break
    fi
done
echo "highest step rate that passed: $best/s ($((best * 60))/min)"
if ((best > 0 && SUSTAIN_SECONDS > 0)); then
    echo "sustained run at $best/s:"
    header
    run_rate "$best" "$SUSTAIN_SECONDS" "sustain$best" || true
fi
echo "plugboard log lines at warn or above: $(grep -ciE 'warn|error' "$BENCH_DIR/plugboard.log" || true)"
