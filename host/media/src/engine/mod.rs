//! The tokio part: RTP sessions on a port range, one pacer for all of them, play, DTMF,
//! record and bridge.
//!
//! # Threads and tasks
//!
//! - **One pacer for every session.** A single OS thread (`plugboard-pacer`) on one
//!   absolute schedule (`start + n × 5 ms`, so errors do not accumulate). Every playing
//!   session belongs to one of four phases and gets its next frame at every fourth
//!   wake-up, i.e. exactly every 20 ms; a wake-up serves a quarter of the sessions, which
//!   keeps each burst short (see `pacer.rs` for the measurements behind this). Lists keep
//!   a stable order, so a session's packets leave at the same offset within its tick.
//!   There is no timer per session or per packet. A dedicated thread rather than a tokio
//!   task: its wake-up does not wait for a busy tokio worker (plugins, SIP, 1,000 receive
//!   tasks) to yield. Sends are synchronous non-blocking syscalls (see `socket.rs`), so
//!   the pacer never blocks on the network; a full socket buffer drops the frame
//!   (counted in [`SessionStats::tx_dropped`]). If the pacer falls more than 100 ms
//!   behind (a stalled machine) it re-anchors its schedule instead of bursting.
//!   [`MediaEngine::pacer_stats`] reports tick durations and late wake-ups. The thread
//!   runs at normal priority; on a loaded host, giving it a real-time priority
//!   (`chrt -f -p 10 <tid>`) removes most late wake-ups.
//! - **One receive task per session** (an async `recv_from`, cheap while idle):
//!   it detects DTMF always (RFC 4733, see [`crate::dtmf`]), decodes audio only while
//!   recording, and forwards packets while bridged.
//!
//! # Symmetric RTP (comedia)
//!
//! Phones behind NAT send from an address other than the one in their SDP. A session
//! therefore *latches*: the source of the first valid RTP packet received after each
//! [`Session::set_remote`] becomes the address we send to, and from then on packets
//! from any other source are ignored (so a third party cannot inject audio or digits
//! after the call has started). A re-INVITE (`set_remote` again) re-arms latching.
//!
//! # RTP details
//!
//! Each session has a random SSRC and random initial sequence number and timestamp.
//! Sequence numbers are continuous across plays and bridges; the timestamp follows the
//! wall clock between talkspurts (it advances by the elapsed time, at least one frame),
//! and the first packet of each talkspurt carries the marker bit. Only the RTP port is
//! bound: RTCP (port + 1) is neither sent nor read; RTCP multiplexed on the RTP port is
//! recognised and ignored.

mod bridge;
mod pacer;
mod session;
mod socket;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use bridge::{BridgeHandle, bridge};
pub use pacer::PacerStats;
pub use session::{
    Closed, PlayOutcome, RecordOptions, RecordStop, Recorded, SILENCE_RMS, Session, SessionStats,
};

/// Where RTP sockets are bound and which address the SDP advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the RTP sockets bind to (often `0.0.0.0`).
    pub bind_ip: IpAddr,
    /// Address put into SDP (`c=`); the public address when behind a static NAT.
    pub advertise_ip: IpAddr,
    /// Lowest port of the RTP range (inclusive).
    pub port_min: u16,
    /// Highest port of the RTP range (inclusive). Only even ports are used for RTP.
    pub port_max: u16,
}

/// Errors of the media engine.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The configuration cannot work.
    #[error("invalid media configuration: {0}")]
    Config(String),
    /// Every even port of the range is in use.
    #[error("no free RTP port in range {min}-{max}")]
    PortsExhausted {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
    /// A socket operation failed.
    #[error("RTP socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Locks a mutex, ignoring poisoning: the media state stays usable even if a thread
/// panicked while holding it (every critical section leaves the state consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct PortPool {
    in_use: HashSet<u16>,
    /// Index (into the even ports) where the next search starts, so a freed port is not
    /// reused at once (late packets of the old call would land in the new one).
    cursor: usize,
}

pub(crate) struct EngineInner {
    cfg: MediaConfig,
    first_port: u16,
    port_count: usize,
    ports: Mutex<PortPool>,
    active: AtomicUsize,
    pacer: Arc<pacer::PacerShared>,
}

impl EngineInner {
    fn allocate(&self) -> Result<(u16, std::net::UdpSocket), MediaError> {
        let mut pool = lock(&self.ports);
        for i in 0..self.port_count {
            let index = (pool.cursor + i) % self.port_count;
            let port = self.first_port + 2 * index as u16;
            if pool.in_use.contains(&port) {
                continue;
            }
            match std::net::UdpSocket::bind(SocketAddr::new(self.cfg.bind_ip, port)) {
                Ok(socket) => {
                    pool.in_use.insert(port);
                    pool.cursor = (index + 1) % self.port_count;
                    return Ok((port, socket));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied
                    ) =>
                {
                    tracing::debug!(port, error = %e, "RTP port unavailable, trying the next");
                }
                Err(e) => return Err(MediaError::Io(e)),
            }
        }
        Err(MediaError::PortsExhausted {
            min: self.cfg.port_min,
            max: self.cfg.port_max,
        })
    }

    pub(crate) fn release(&self, port: u16) {
        lock(&self.ports).in_use.remove(&port);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.pacer.stop();
    }
}

/// The media engine: allocates RTP sessions and runs the pacer. Cheap to clone.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("cfg", &self.inner.cfg)
            .field("active_sessions", &self.active_sessions())
            .finish()
    }
}

impl MediaEngine {
    /// Validates the configuration and starts the pacer thread. The pacer stops when the
    /// engine and every session are dropped. Sessions must be opened inside a tokio runtime.
    pub fn new(cfg: MediaConfig) -> Result<MediaEngine, MediaError> {
        if cfg.port_min > cfg.port_max {
            return Err(MediaError::Config(format!(
                "port_min {} is above port_max {}",
                cfg.port_min, cfg.port_max
            )));
        }
        let first_port = cfg.port_min.saturating_add(cfg.port_min % 2);
        if cfg.port_min == 0 || first_port > cfg.port_max {
            return Err(MediaError::Config(format!(
                "RTP port range {}-{} holds no usable even port",
                cfg.port_min, cfg.port_max
            )));
        }
        if cfg.bind_ip.is_ipv4() != cfg.advertise_ip.is_ipv4() {
            return Err(MediaError::Config(format!(
                "bind_ip {} and advertise_ip {} are of different IP versions",
                cfg.bind_ip, cfg.advertise_ip
            )));
        }
        let port_count = usize::from((cfg.port_max - first_port) / 2) + 1;
        let pacer = pacer::PacerShared::start()?;
        Ok(MediaEngine {
            inner: Arc::new(EngineInner {
                cfg,
                first_port,
                port_count,
                ports: Mutex::new(PortPool {
                    in_use: HashSet::new(),
                    cursor: 0,
                }),
                active: AtomicUsize::new(0),
                pacer,
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.cfg
    }

    /// Binds an RTP socket on a free even port of the range (ports in use by this engine
    /// or by another process are skipped; [`MediaError::PortsExhausted`] when none is left)
    /// and starts its receive task.
    pub async fn open_session(&self) -> Result<Session, MediaError> {
        let (port, socket) = self.inner.allocate()?;
        self.inner.active.fetch_add(1, Ordering::Relaxed);
        match Session::start(self.inner.clone(), port, socket) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.inner.release(port);
                Err(e)
            }
        }
    }

    /// The pacer's counters (tick durations and lateness).
    pub fn pacer_stats(&self) -> PacerStats {
        self.inner.pacer.stats()
    }

    /// Sessions opened and not yet closed or dropped.
    pub fn active_sessions(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }
}
