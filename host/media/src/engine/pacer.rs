//! The single pacer: one thread, one schedule, every playing session.
//!
//! The thread wakes every 5 ms on an absolute schedule. Each session belongs to one of
//! four phases and is served at every fourth wake-up, so its frames leave exactly 20 ms
//! apart, while one wake-up sends only a quarter of the frames. Why phases rather than
//! one 20 ms burst: on loopback a `sendto` costs 5-10 µs, so 1,000 frames in one burst
//! take 6-9 ms, and the last session's offset within the burst wanders with every change
//! in that cost (measured p99 deviation 6-8 ms on a busy 2-core box); a quarter of the
//! burst wanders a quarter as much. It also spreads the load on the network and on the
//! receivers' buffers (250-packet bursts rather than 1,000).
//!
//! Sessions are registered when a play starts (`PacerShared::add`) and join the
//! least-loaded phase; they leave their list at the first tick at which they have
//! nothing to play. Lists keep their order (`Vec::retain`), so a session's packets
//! leave at a stable offset within its tick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{MediaError, lock, session::Shared};
use crate::FRAME_MS;

/// Sessions are spread over this many phases of the 20 ms frame period.
const PHASES: usize = 4;
/// The pacer wakes once per phase: every 5 ms, serving a quarter of the sessions.
const SUB_TICK: Duration = Duration::from_millis(FRAME_MS as u64 / PHASES as u64);
/// Falling further behind than this re-anchors the schedule instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(100);

pub(crate) struct PacerShared {
    pending: Mutex<Vec<Arc<Shared>>>,
    stop: AtomicBool,
    ticks: AtomicU64,
    busy_us: AtomicU64,
    max_busy_us: AtomicU64,
    late_ticks: AtomicU64,
    max_late_us: AtomicU64,
    reanchors: AtomicU64,
    playing: AtomicU64,
}

/// Counters of the engine's pacer, for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacerStats {
    /// Wake-ups run (one every 5 ms; each serves a quarter of the sessions).
    pub ticks: u64,
    /// Total time spent sending frames, in microseconds.
    pub busy_us: u64,
    /// The longest tick, in microseconds (it should stay well below 20,000).
    pub max_busy_us: u64,
    /// Ticks that started more than 2 ms after their scheduled time (the thread was not
    /// scheduled in time: CPU starvation).
    pub late_ticks: u64,
    /// The latest tick start, in microseconds after its scheduled time.
    pub max_late_us: u64,
    /// Times the pacer fell more than 100 ms behind and skipped ticks.
    pub reanchors: u64,
    /// Sessions in the tick list at the last tick.
    pub playing: u64,
}

/// A tick starting later than this after its schedule counts as late.
const LATE: Duration = Duration::from_millis(2);

impl PacerShared {
    /// Starts the pacer thread.
    pub(crate) fn start() -> Result<Arc<PacerShared>, MediaError> {
        let shared = Arc::new(PacerShared {
            pending: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            busy_us: AtomicU64::new(0),
            max_busy_us: AtomicU64::new(0),
            late_ticks: AtomicU64::new(0),
            max_late_us: AtomicU64::new(0),
            reanchors: AtomicU64::new(0),
            playing: AtomicU64::new(0),
        });
        let for_thread = shared.clone();
        std::thread::Builder::new()
            .name("plugboard-pacer".into())
            .spawn(move || run(&for_thread))?;
        Ok(shared)
    }

    /// Adds a session to the tick list (from the next tick on).
    pub(crate) fn add(&self, session: Arc<Shared>) {
        lock(&self.pending).push(session);
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> PacerStats {
        PacerStats {
            ticks: self.ticks.load(Ordering::Relaxed),
            busy_us: self.busy_us.load(Ordering::Relaxed),
            max_busy_us: self.max_busy_us.load(Ordering::Relaxed),
            late_ticks: self.late_ticks.load(Ordering::Relaxed),
            max_late_us: self.max_late_us.load(Ordering::Relaxed),
            reanchors: self.reanchors.load(Ordering::Relaxed),
            playing: self.playing.load(Ordering::Relaxed),
        }
    }

    /// Asks the thread to exit at its next tick.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(p: &PacerShared) {
    // One list per phase; phase `i` is served at sub-ticks i, i + PHASES, ...
    let mut phases: [Vec<Arc<Shared>>; PHASES] = Default::default();
    let mut scratch = Vec::with_capacity(crate::rtp::HEADER_LEN + crate::FRAME_SAMPLES);
    let mut next = Instant::now() + SUB_TICK;
    let mut phase = 0usize;
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        if p.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let late = now.saturating_duration_since(next);
        if late > LATE {
            p.late_ticks.fetch_add(1, Ordering::Relaxed);
        }
        p.max_late_us
            .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
        if late > MAX_LAG {
            tracing::warn!(
                lag_ms = late.as_millis() as u64,
                "media pacer fell behind; re-anchoring"
            );
            p.reanchors.fetch_add(1, Ordering::Relaxed);
            next = now;
        }
        next += SUB_TICK;
        phase = (phase + 1) % PHASES;
        {
            // New plays join the least-loaded phase (ties: the soonest), so each phase
            // carries about a quarter of the sessions.
            let mut pending = lock(&p.pending);
            for s in pending.drain(..) {
                let target = (0..PHASES)
                    .map(|k| (phase + k) % PHASES)
                    .min_by_key(|&i| phases[i].len())
                    .unwrap_or(phase);
                phases[target].push(s);
            }
        }
        phases[phase].retain(|s| s.pace_tick(now, &mut scratch));
        let busy = now.elapsed().as_micros() as u64;
        p.ticks.fetch_add(1, Ordering::Relaxed);
        p.busy_us.fetch_add(busy, Ordering::Relaxed);
        p.max_busy_us.fetch_max(busy, Ordering::Relaxed);
        let playing: usize = phases.iter().map(Vec::len).sum();
        p.playing.store(playing as u64, Ordering::Relaxed);
    }
    // Wake any play still waiting: the engine is gone.
    for s in phases.into_iter().flatten() {
        s.abort_play();
    }
    for s in lock(&p.pending).drain(..) {
        s.abort_play();
    }
}
