//! Pacing under load: N sessions each play a long prompt to receivers on loopback that
//! timestamp every packet; prints the distribution of |inter-arrival - 20 ms| and losses.
//!
//! ```text
//! cargo run --release -p plugboard-media --example pacing_load -- \
//!     [--sessions 1000] [--seconds 10] [--port-min 30000] [--receivers 4] [--workers 2] \
//!     [--receiver-mode poll|block]
//! ```
//!
//! Each session sends to one of `--receivers` sockets (4 MiB receive buffers). An
//! interval is measured only between consecutive sequence numbers of the same stream,
//! after a 1 s warm-up. The prompt is longer than the run, so no talkspurt boundary
//! falls inside it. The receivers share the 2 cores with the engine, which real phones
//! would not, so there are two ways to read them:
//!
//! - `poll` (default): one thread drains every socket without blocking, then sleeps
//!   0.5 ms. No thread sleeps on a socket, so the sender's `sendto` wakes nobody (on a
//!   real network the wake-up happens on the phone). Timestamps are late by up to one
//!   sweep (about 0.5-0.6 ms), which adds that much noise to each interval.
//! - `block`: a thread per socket blocks in `recv_from` and timestamps at once: precise,
//!   but every packet wakes a receiver thread from inside the pacer's `sendto` (on
//!   loopback the whole receive path runs in the sender), about a third of the pacer's
//!   CPU in `perf`; a pessimistic bound.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plugboard_media::{Audio, Codec, MediaConfig, MediaEngine, Negotiated, rtp};

struct Args {
    sessions: usize,
    seconds: u64,
    port_min: u16,
    receivers: usize,
    workers: usize,
    block: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        sessions: 1000,
        seconds: 10,
        port_min: 30000,
        receivers: 4,
        workers: 2,
        block: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--sessions" => a.sessions = value.parse().map_err(bad)?,
            "--seconds" => a.seconds = value.parse().map_err(bad)?,
            "--port-min" => a.port_min = value.parse().map_err(bad)?,
            "--receivers" => a.receivers = value.parse().map_err(bad)?,
            "--workers" => a.workers = value.parse().map_err(bad)?,
            "--receiver-mode" => {
                a.block = match value.as_str() {
                    "block" => true,
                    "poll" => false,
                    _ => return Err(format!("--receiver-mode {value}: use poll or block")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.sessions == 0 || a.receivers == 0 || a.workers == 0 {
        return Err("sessions, receivers and workers must be positive".into());
    }
    Ok(a)
}

#[derive(Default)]
struct ReceiverResult {
    received: u64,
    deviations_us: Vec<u32>,
}

impl ReceiverResult {
    fn on_packet(
        &mut self,
        last: &mut HashMap<SocketAddr, (Instant, u16)>,
        packet: &[u8],
        src: SocketAddr,
        at: Instant,
        measure_from: Instant,
    ) {
        let Some((h, _)) = rtp::parse(packet) else {
            return;
        };
        self.received += 1;
        if let Some((prev_at, prev_seq)) = last.insert(src, (at, h.sequence))
            && prev_seq.wrapping_add(1) == h.sequence
            && prev_at >= measure_from
        {
            let gap = at.duration_since(prev_at).as_micros() as i64;
            self.deviations_us
                .push((gap - 20_000).unsigned_abs() as u32);
        }
    }
}

/// `block` mode: reads one socket until `stop`, timestamping each packet on arrival.
fn receive_blocking(
    sock: UdpSocket,
    stop: Arc<AtomicBool>,
    measure_from: Instant,
) -> ReceiverResult {
    let mut res = ReceiverResult::default();
    let mut last = HashMap::new();
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, src)) = sock.recv_from(&mut buf) {
            res.on_packet(&mut last, &buf[..n], src, Instant::now(), measure_from);
        }
    }
    res
}

/// `poll` mode: drains every socket without blocking, then sleeps 0.5 ms.
fn receive_polling(
    socks: Vec<UdpSocket>,
    stop: Arc<AtomicBool>,
    measure_from: Instant,
) -> ReceiverResult {
    let mut res = ReceiverResult::default();
    let mut last = HashMap::new();
    let mut buf = [0u8; 2048];
    for s in &socks {
        s.set_nonblocking(true).ok();
    }
    while !stop.load(Ordering::Relaxed) {
        for s in &socks {
            while let Ok((n, src)) = s.recv_from(&mut buf) {
                res.on_packet(&mut last, &buf[..n], src, Instant::now(), measure_from);
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    res
}

/// CPU time (user + system) of this process in seconds, from /proc (Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pacing_load: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let span = u16::try_from(args.sessions * 2 + 64).unwrap_or(u16::MAX);
    let engine = MediaEngine::new(MediaConfig {
        bind_ip: localhost,
        advertise_ip: localhost,
        port_min: args.port_min,
        port_max: args.port_min.saturating_add(span),
    })
    .expect("media engine");

    // Receivers.
    let stop = Arc::new(AtomicBool::new(false));
    let measure_from = Instant::now() + Duration::from_secs(1);
    let mut receiver_addrs = Vec::new();
    let mut socks = Vec::new();
    for _ in 0..args.receivers {
        let sock = UdpSocket::bind((localhost, 0)).expect("receiver socket");
        socket2::SockRef::from(&sock)
            .set_recv_buffer_size(4 << 20)
            .ok();
        receiver_addrs.push(sock.local_addr().expect("receiver addr"));
        socks.push(sock);
    }
    let mut threads = Vec::new();
    if args.block {
        for sock in socks {
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("pacing-receiver".into())
                    .spawn(move || receive_blocking(sock, stop, measure_from))
                    .expect("receiver thread"),
            );
        }
    } else {
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("pacing-receiver".into())
                .spawn(move || receive_polling(socks, stop, measure_from))
                .expect("receiver thread"),
        );
    }

    // Sessions, all playing a prompt longer than the run.
    let prompt = Audio::new(
        (0..(args.seconds as usize + 5) * 8000)
            .map(|i| ((i as f64 * 0.314).sin() * 6000.0) as i16)
            .collect(),
    );
    let mut sessions = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let s = engine.open_session().await.expect("open session");
        s.set_remote(Negotiated {
            codec: Codec::Pcmu,
            remote: receiver_addrs[i % receiver_addrs.len()],
            telephone_event_pt: None,
            ptime_ms: 20,
        });
        sessions.push(Arc::new(s));
    }
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut players = Vec::with_capacity(args.sessions);
    for s in &sessions {
        let s = s.clone();
        let prompt = prompt.clone();
        players.push(tokio::spawn(async move { s.play(&prompt, false).await }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
    for s in &sessions {
        s.close(); // stops every play at once
    }
    for p in players {
        let _ = p.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // let the last packets land
    stop.store(true, Ordering::Relaxed);

    let sent: u64 = sessions.iter().map(|s| s.stats().tx_packets).sum();
    let dropped: u64 = sessions.iter().map(|s| s.stats().tx_dropped).sum();
    let mut received = 0u64;
    let mut devs = Vec::new();
    for t in threads {
        let r = t.join().expect("receiver thread");
        received += r.received;
        devs.extend(r.deviations_us);
    }
    devs.sort_unstable();
    let expected = (args.sessions as f64) * wall * 50.0;
    println!(
        "sessions {}  seconds {:.1}  workers {}  receivers {} ({})",
        args.sessions,
        wall,
        args.workers,
        args.receivers,
        if args.block { "block" } else { "poll 0.5 ms" }
    );
    println!(
        "packets sent {sent} (ideal {expected:.0})  received {received}  lost {}  send-dropped {dropped}",
        sent.saturating_sub(received)
    );
    println!(
        "|inter-arrival - 20 ms| over {} intervals: median {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        devs.len(),
        percentile(&devs, 0.5),
        percentile(&devs, 0.99),
        percentile(&devs, 0.999),
        percentile(&devs, 1.0)
    );
    let ps = engine.pacer_stats();
    println!(
        "pacer: {} ticks, mean tick {:.2} ms, max tick {:.2} ms, late starts (> 2 ms) {}, max late {:.2} ms, re-anchors {}",
        ps.ticks,
        ps.busy_us as f64 / ps.ticks.max(1) as f64 / 1000.0,
        ps.max_busy_us as f64 / 1000.0,
        ps.late_ticks,
        ps.max_late_us as f64 / 1000.0,
        ps.reanchors
    );
    if let Some(cpu) = cpu {
        println!(
            "process CPU {:.2} s over {:.1} s wall ({:.0}% of one core, receivers included)",
            cpu,
            wall,
            cpu / wall * 100.0
        );
    }
}
