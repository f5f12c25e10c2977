//! One RTP endpoint: its send state (driven by the pacer and bridges), its receive task
//! (DTMF, recording, latching, forwarding) and the async operations the call layer uses.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot, watch};

use super::bridge::BridgeOut;
use super::socket::RtpSocket;
use super::{EngineInner, MediaError, lock};
use crate::dtmf::DtmfDetector;
use crate::rtp::{self, RtpHeader};
use crate::{Audio, Codec, FRAME_SAMPLES, Negotiated};

/// A frame whose RMS level is at or below this (on the 16-bit scale, about -42 dBFS)
/// counts as silence for [`RecordOptions::silence_ms`] and trailing-silence trimming.
pub const SILENCE_RMS: u32 = 256;

/// Receive gaps (lost packets, silence suppression) up to this many samples are filled
/// with silence in recordings; larger timestamp jumps are treated as a new stream.
const MAX_GAP_FILL: u32 = 8000;

/// How [`Session::play`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayOutcome {
    /// Every frame was sent (the call returns about when the last frame has played out).
    Completed,
    /// A DTMF key stopped it (barge-in; the key stays queued), a newer `play` replaced it,
    /// or a bridge took over the session.
    Interrupted,
    /// The session was closed (hangup) or the engine stopped.
    Closed,
}

/// The session was closed (hangup): returned by [`Session::next_digit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("media session closed")]
pub struct Closed;

/// Parameters of [`Session::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// Stop at this length (0 = no limit).
    pub max_ms: u32,
    /// Stop after this much continuous silence (0 = never). Counted by the wall clock, so
    /// a peer that stops sending RTP also ends the recording.
    pub silence_ms: u32,
    /// DTMF keys that stop the recording; the key is returned in [`Recorded::key`] and is
    /// not queued for [`Session::next_digit`]. Other keys are queued as usual.
    pub stop_keys: String,
}

impl Default for RecordOptions {
    /// Two minutes at most, 5 s of silence, `#` stops.
    fn default() -> RecordOptions {
        RecordOptions {
            max_ms: 120_000,
            silence_ms: 5_000,
            stop_keys: "#".into(),
        }
    }
}

/// Why a recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStop {
    /// [`RecordOptions::max_ms`] was reached.
    MaxLength,
    /// [`RecordOptions::silence_ms`] of silence.
    Silence,
    /// A stop key was pressed.
    Key,
    /// The session was closed (hangup).
    Hangup,
}

/// The result of [`Session::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Decoded 8 kHz samples, without trailing silence (empty if nothing was said).
    pub samples: Vec<i16>,
    /// What ended the recording.
    pub stopped_by: RecordStop,
    /// The stop key, when `stopped_by` is [`RecordStop::Key`].
    pub key: Option<char>,
}

/// Packet counters of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// Valid RTP packets accepted (after latching).
    pub rx_packets: u64,
    /// Packets sent (played or bridged).
    pub tx_packets: u64,
    /// UDP payload bytes of `rx_packets`.
    pub rx_bytes: u64,
    /// UDP payload bytes of `tx_packets`.
    pub tx_bytes: u64,
    /// Packets not sent because the socket buffer was full or the send failed.
    pub tx_dropped: u64,
    /// When the last accepted packet arrived.
    pub last_rx: Option<Instant>,
}

pub(crate) struct PlayJob {
    audio: Arc<[i16]>,
    pos: usize,
    barge_in: bool,
    started: bool,
    done: oneshot::Sender<PlayOutcome>,
}

impl PlayJob {
    fn finish(self, outcome: PlayOutcome) {
        let _ = self.done.send(outcome);
    }
}

/// Send-side state: shared by the pacer, bridges forwarding into this session and the API.
pub(crate) struct Tx {
    /// The socket (shared with the receive task); `None` once closed. Sends are
    /// synchronous and non-blocking, so the pacer thread needs no runtime context.
    pub(crate) socket: Option<Arc<RtpSocket>>,
    /// Where to send (SDP address, replaced by the latched source).
    pub(crate) remote: Option<SocketAddr>,
    /// The source we latched onto since the last `set_remote`.
    latched: Option<SocketAddr>,
    pub(crate) codec: Codec,
    pub(crate) te_pt: Option<u8>,
    pub(crate) hold: bool,
    pub(crate) next_seq: u16,
    /// Timestamp of the last packet sent (or the random initial one minus a frame).
    pub(crate) last_ts: u32,
    pub(crate) last_sent: Option<Instant>,
    play: Option<PlayJob>,
    in_pacer: bool,
    /// The bridge that owns sending, if any.
    pub(crate) bridge_id: Option<u64>,
}

impl Tx {
    /// The destination, unless on hold or unknown (`0.0.0.0` legacy hold included).
    pub(crate) fn destination(&self) -> Option<SocketAddr> {
        if self.hold {
            return None;
        }
        self.remote
            .filter(|r| !r.ip().is_unspecified() && r.port() != 0)
    }

    /// Timestamp for the first packet of a new talkspurt: the clock kept running since the
    /// last packet (at least one frame later, in whole frames).
    pub(crate) fn talkspurt_ts(&self, now: Instant) -> u32 {
        let frame = FRAME_SAMPLES as u32;
        let advance = match self.last_sent {
            None => frame,
            Some(t) => {
                let samples = now.saturating_duration_since(t).as_micros() as u64 * 8 / 1000;
                let frames = (samples + u64::from(frame) / 2) / u64::from(frame);
                (frames.clamp(1, u64::from(u32::MAX / frame)) as u32) * frame
            }
        };
        self.last_ts.wrapping_add(advance)
    }

    /// Sends one packet from this session; updates counters.
    pub(crate) fn send(&self, stats: &Stats, packet: &[u8], to: SocketAddr) {
        let Some(socket) = &self.socket else { return };
        match socket.send_to(packet, to) {
            Ok(n) => {
                stats.tx_packets.fetch_add(1, Ordering::Relaxed);
                stats.tx_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(error = %e, %to, "RTP send failed");
            }
        }
    }
}

struct RecordJob {
    id: u64,
    samples: Vec<i16>,
    /// Length of `samples` up to the end of the last voiced frame.
    voiced_len: usize,
    max_samples: Option<usize>,
    silence: Option<Duration>,
    stop_keys: String,
    started: Instant,
    last_voice: Instant,
    /// (ssrc, timestamp after the last packet) for gap filling.
    next_ts: Option<(u32, u32)>,
    stop: Option<(RecordStop, Option<char>)>,
}

impl RecordJob {
    fn push_packet(&mut self, codec: Codec, ssrc: u32, ts: u32, payload: &[u8], now: Instant) {
        if let Some((_, expected)) = self.next_ts.filter(|(s, _)| *s == ssrc) {
            let ahead = ts.wrapping_sub(expected);
            if ahead > u32::MAX / 2 {
                return; // late, reordered packet: already filled with silence
            }
            if ahead > 0 && ahead <= MAX_GAP_FILL {
                self.samples.resize(self.samples.len() + ahead as usize, 0);
            }
        }
        self.next_ts = Some((ssrc, ts.wrapping_add(payload.len() as u32)));
        let mut energy: u64 = 0;
        self.samples.reserve(payload.len());
        for &c in payload {
            let s = codec.decode(c);
            energy += (i64::from(s) * i64::from(s)) as u64;
            self.samples.push(s);
        }
        let threshold = u64::from(SILENCE_RMS) * u64::from(SILENCE_RMS);
        if !payload.is_empty() && energy / payload.len() as u64 > threshold {
            self.last_voice = now;
            self.voiced_len = self.samples.len();
        }
        self.check(now);
    }

    /// Sets `stop` when a limit is reached.
    fn check(&mut self, now: Instant) {
        if self.stop.is_some() {
            return;
        }
        if let Some(max) = self.max_samples {
            if self.samples.len() >= max {
                self.samples.truncate(max);
                self.voiced_len = self.voiced_len.min(max);
                self.stop = Some((RecordStop::MaxLength, None));
                return;
            }
            if now.saturating_duration_since(self.started) >= Duration::from_millis(max as u64 / 8)
            {
                self.stop = Some((RecordStop::MaxLength, None));
                return;
            }
        }
        if let Some(silence) = self.silence
            && now.saturating_duration_since(self.last_voice) >= silence
        {
            self.stop = Some((RecordStop::Silence, None));
        }
    }

    /// The next wall-clock instant at which `check` could stop the recording.
    fn deadline(&self) -> Option<Instant> {
        let max = self
            .max_samples
            .map(|m| self.started + Duration::from_millis(m as u64 / 8));
        let silence = self.silence.map(|s| self.last_voice + s);
        match (max, silence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn into_recorded(mut self, stop: RecordStop, key: Option<char>) -> Recorded {
        self.samples.truncate(self.voiced_len);
        Recorded {
            samples: self.samples,
            stopped_by: stop,
            key,
        }
    }
}

/// Receive-side state, owned by the receive task (the API only installs/removes jobs).
pub(crate) struct Rx {
    dtmf: DtmfDetector,
    record: Option<RecordJob>,
    pub(crate) bridge: Option<BridgeOut>,
    last_rx: Option<Instant>,
    /// Scratch buffer for transcoding/forwarding.
    scratch: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Stats {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    pub(crate) tx_packets: AtomicU64,
    pub(crate) tx_bytes: AtomicU64,
    pub(crate) tx_dropped: AtomicU64,
}

/// Everything of a session that the pacer, the receive task and bridges share.
pub(crate) struct Shared {
    engine: Arc<EngineInner>,
    port: u16,
    local_addr: SocketAddr,
    pub(crate) ssrc: u32,
    pub(crate) tx: Mutex<Tx>,
    pub(crate) rx: Mutex<Rx>,
    pub(crate) stats: Stats,
    digits: Mutex<VecDeque<char>>,
    digit_notify: Notify,
    record_notify: Notify,
    closed: watch::Sender<bool>,
    closing: AtomicBool,
    next_job_id: AtomicU64,
}

impl Shared {
    /// One pacer tick: sends the next frame if playing. Returns false when the session has
    /// nothing more to play and should leave the pacer's list.
    pub(crate) fn pace_tick(&self, now: Instant, scratch: &mut Vec<u8>) -> bool {
        let mut tx = lock(&self.tx);
        let Some(job) = tx.play.as_mut() else {
            tx.in_pacer = false;
            return false;
        };
        if job.done.is_closed() {
            // The caller stopped waiting (its future was dropped): stop playing.
            tx.play = None;
            tx.in_pacer = false;
            return false;
        }
        if job.pos >= job.audio.len() {
            // The last frame went out one tick ago and has played out by now.
            if let Some(job) = tx.play.take() {
                job.finish(PlayOutcome::Completed);
            }
            tx.in_pacer = false;
            return false;
        }
        let start = job.pos;
        let end = (start + FRAME_SAMPLES).min(job.audio.len());
        job.pos = start + FRAME_SAMPLES;
        let marker = !job.started;
        job.started = true;
        let audio = job.audio.clone();

        let ts = if marker {
            tx.talkspurt_ts(now)
        } else {
            tx.last_ts.wrapping_add(FRAME_SAMPLES as u32)
        };
        let mut header = RtpHeader::new(tx.codec.payload_type(), tx.next_seq, ts, self.ssrc);
        header.marker = marker;
        tx.next_seq = tx.next_seq.wrapping_add(1);
        tx.last_ts = ts;
        tx.last_sent = Some(now);

        if let Some(to) = tx.destination() {
            let codec = tx.codec;
            let mut h = [0u8; rtp::HEADER_LEN];
            header.write(&mut h);
            scratch.clear();
            scratch.extend_from_slice(&h);
            scratch.extend(audio[start..end].iter().map(|&s| codec.encode(s)));
            let silence = codec.encode(0);
            scratch.resize(rtp::HEADER_LEN + FRAME_SAMPLES, silence);
            tx.send(&self.stats, scratch, to);
        }
        true
    }

    /// Ends a play with `Closed` (engine shutdown).
    pub(crate) fn abort_play(&self) {
        let mut tx = lock(&self.tx);
        tx.in_pacer = false;
        if let Some(job) = tx.play.take() {
            job.finish(PlayOutcome::Closed);
        }
    }

    /// Stops a play because a bridge takes over sending.
    pub(crate) fn interrupt_play(&self) {
        if let Some(job) = lock(&self.tx).play.take() {
            job.finish(PlayOutcome::Interrupted);
        }
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Handles one datagram from `src` (receive task).
    fn on_datagram(&self, packet: &[u8], src: SocketAddr, now: Instant) {
        let Some((header, payload)) = rtp::parse(packet) else {
            return; // not RTP (STUN, RTCP, garbage)
        };
        let te_pt = {
            let mut tx = lock(&self.tx);
            match tx.latched {
                Some(addr) if addr != src => return,
                Some(_) => {}
                None => {
                    tx.latched = Some(src);
                    if tx.remote != Some(src) {
                        tracing::debug!(
                            port = self.port,
                            sdp = ?tx.remote,
                            %src,
                            "symmetric RTP: latching onto the source address"
                        );
                        tx.remote = Some(src);
                    }
                }
            }
            tx.te_pt
        };
        self.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
        self.stats
            .rx_bytes
            .fetch_add(packet.len() as u64, Ordering::Relaxed);

        let mut rx = lock(&self.rx);
        rx.last_rx = Some(now);
        let pt = header.payload_type;
        if te_pt == Some(pt) {
            let digit = rx.dtmf.on_packet(header.ssrc, header.timestamp, payload);
            let Rx {
                bridge, scratch, ..
            } = &mut *rx;
            if let Some(link) = bridge.as_mut() {
                link.forward(&header, payload, None, scratch, now);
            }
            if let Some(d) = digit {
                self.on_digit(&mut rx, d, now);
            }
        } else if let Some(codec) = Codec::from_payload_type(pt) {
            let rx = &mut *rx;
            if let Some(job) = rx.record.as_mut()
                && job.stop.is_none()
            {
                job.push_packet(codec, header.ssrc, header.timestamp, payload, now);
                if job.stop.is_some() {
                    self.record_notify.notify_one();
                }
            }
            if let Some(link) = rx.bridge.as_mut() {
                link.forward(&header, payload, Some(codec), &mut rx.scratch, now);
            }
        }
    }

    fn on_digit(&self, rx: &mut Rx, digit: char, now: Instant) {
        tracing::debug!(port = self.port, %digit, "DTMF");
        if let Some(job) = rx.record.as_mut()
            && job.stop.is_none()
        {
            if job.stop_keys.contains(digit) {
                job.stop = Some((RecordStop::Key, Some(digit)));
                self.record_notify.notify_one();
                return;
            }
            job.check(now);
        }
        lock(&self.digits).push_back(digit);
        self.digit_notify.notify_one();
        let mut tx = lock(&self.tx);
        if tx.play.as_ref().is_some_and(|j| j.barge_in)
            && let Some(job) = tx.play.take()
        {
            job.finish(PlayOutcome::Interrupted);
        }
    }

    /// Marks the session closed and wakes every waiter. Idempotent.
    fn close(&self) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.closed.send_replace(true);
        {
            // Lock order everywhere: an `rx` may be held while taking a `tx`, never the
            // reverse, so these two critical sections stay apart.
            let mut tx = lock(&self.tx);
            tx.socket = None;
            tx.bridge_id = None;
            if let Some(job) = tx.play.take() {
                job.finish(PlayOutcome::Closed);
            }
        }
        let peer = lock(&self.rx).bridge.take();
        if let Some(link) = peer {
            link.unlink_peer();
        }
        self.record_notify.notify_one();
        self.digit_notify.notify_one();
        self.engine.release(self.port);
    }
}

/// One RTP endpoint (one call leg). Dropping it, or [`Session::close`], stops everything
/// and frees the port. Not `Clone`: share it as `Arc<Session>`.
pub struct Session {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_addr", &self.shared.local_addr)
            .field("ssrc", &self.shared.ssrc)
            .finish()
    }
}

impl Session {
    pub(crate) fn start(
        engine: Arc<EngineInner>,
        port: u16,
        socket: std::net::UdpSocket,
    ) -> Result<Session, MediaError> {
        let socket = Arc::new(RtpSocket::new(socket)?);
        let local_addr = SocketAddr::new(engine.cfg.advertise_ip, port);
        let (closed, closed_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            engine,
            port,
            local_addr,
            ssrc: rand::random(),
            tx: Mutex::new(Tx {
                socket: Some(socket.clone()),
                remote: None,
                latched: None,
                codec: Codec::Pcmu,
                te_pt: None,
                hold: false,
                next_seq: rand::random(),
                last_ts: rand::random(),
                last_sent: None,
                play: None,
                in_pacer: false,
                bridge_id: None,
            }),
            rx: Mutex::new(Rx {
                dtmf: DtmfDetector::new(),
                record: None,
                bridge: None,
                last_rx: None,
                scratch: Vec::with_capacity(1500),
            }),
            stats: Stats::default(),
            digits: Mutex::new(VecDeque::new()),
            digit_notify: Notify::new(),
            record_notify: Notify::new(),
            closed,
            closing: AtomicBool::new(false),
            next_job_id: AtomicU64::new(1),
        });
        tokio::spawn(receive_loop(shared.clone(), socket, closed_rx));
        Ok(Session { shared })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Our RTP address for SDP: the advertised IP and the bound port.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The address RTP is currently sent to (the SDP address, or the latched source).
    pub fn remote(&self) -> Option<SocketAddr> {
        lock(&self.shared.tx).remote
    }

    /// Applies a negotiation: destination, codec, telephone-event payload type. May be
    /// called again (re-INVITE); it re-arms symmetric-RTP latching.
    pub fn set_remote(&self, n: Negotiated) {
        let mut tx = lock(&self.shared.tx);
        tx.remote = Some(n.remote);
        tx.latched = None;
        tx.codec = n.codec;
        tx.te_pt = n.telephone_event_pt;
    }

    /// Stops (true) or resumes (false) sending, for hold. A play keeps running in time
    /// while held (its frames are not sent); receiving continues.
    pub fn set_hold(&self, hold: bool) {
        lock(&self.shared.tx).hold = hold;
    }

    /// Plays audio in 20 ms frames (160 samples, the last one padded with silence) encoded
    /// with the negotiated codec, paced by the engine's single pacer. Sequence numbers and
    /// timestamps continue across plays; the first packet has the marker bit.
    ///
    /// With `barge_in`, a DTMF key stops it with [`PlayOutcome::Interrupted`] and stays
    /// queued for [`Session::next_digit`]; a key already queued when the play starts
    /// (type-ahead) interrupts it at once, so call [`Session::clear_digits`] first to
    /// ignore earlier keys. A newer `play` interrupts this one; so does [`crate::bridge`].
    /// Dropping the future stops the playback at the next tick.
    pub async fn play(&self, audio: &Audio, barge_in: bool) -> PlayOutcome {
        let s = &self.shared;
        if s.is_closed() {
            return PlayOutcome::Closed;
        }
        if barge_in && !lock(&s.digits).is_empty() {
            return PlayOutcome::Interrupted;
        }
        if audio.samples.is_empty() {
            return PlayOutcome::Completed;
        }
        let (done, wait) = oneshot::channel();
        let register = {
            let mut tx = lock(&s.tx);
            if tx.bridge_id.is_some() {
                return PlayOutcome::Interrupted;
            }
            if let Some(old) = tx.play.take() {
                old.finish(PlayOutcome::Interrupted);
            }
            tx.play = Some(PlayJob {
                audio: audio.samples.clone(),
                pos: 0,
                barge_in,
                started: false,
                done,
            });
            !std::mem::replace(&mut tx.in_pacer, true)
        };
        if register {
            s.engine.pacer.add(s.clone());
        }
        wait.await.unwrap_or(PlayOutcome::Closed)
    }

    /// The next DTMF key: one queued since it was last called, or the first to arrive
    /// within `timeout` (`Ok(None)` on timeout). `Err(Closed)` once the session is closed.
    pub async fn next_digit(&self, timeout: Duration) -> Result<Option<char>, Closed> {
        let s = &self.shared;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut closed = s.closed.subscribe();
        loop {
            let notified = s.digit_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if s.is_closed() {
                return Err(Closed);
            }
            if let Some(d) = lock(&s.digits).pop_front() {
                return Ok(Some(d));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(lock(&s.digits).pop_front());
                }
                _ = closed.wait_for(|c| *c) => return Err(Closed),
            }
        }
    }

    /// Forgets the queued keys.
    pub fn clear_digits(&self) {
        lock(&self.shared.digits).clear();
    }

    /// Records decoded inbound audio until `max_ms`, `silence_ms` of silence (frames at or
    /// below [`SILENCE_RMS`], or no packets at all), a stop key, or close/drop
    /// ([`RecordStop::Hangup`]). Lost packets are filled with silence. The samples are
    /// returned without trailing silence. A newer `record` ends this one as `Hangup`.
    pub async fn record(&self, opts: RecordOptions) -> Recorded {
        let s = &self.shared;
        let now = Instant::now();
        let id = s.next_job_id.fetch_add(1, Ordering::Relaxed);
        let job = RecordJob {
            id,
            samples: Vec::new(),
            voiced_len: 0,
            max_samples: (opts.max_ms > 0).then(|| opts.max_ms as usize * 8),
            silence: (opts.silence_ms > 0).then(|| Duration::from_millis(opts.silence_ms.into())),
            stop_keys: opts.stop_keys,
            started: now,
            last_voice: now,
            next_ts: None,
            stop: None,
        };
        if s.is_closed() {
            return job.into_recorded(RecordStop::Hangup, None);
        }
        let mut deadline = job.deadline();
        let replaced = lock(&s.rx).record.replace(job);
        if replaced.is_some() {
            // The older call is waiting on the same Notify; it will find its job gone.
            s.record_notify.notify_one();
        }
        let mut closed = s.closed.subscribe();
        loop {
            let notified = s.record_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut rx = lock(&s.rx);
                let Some(job) = rx.record.as_mut().filter(|j| j.id == id) else {
                    // Replaced by a newer record().
                    return Recorded {
                        samples: Vec::new(),
                        stopped_by: RecordStop::Hangup,
                        key: None,
                    };
                };
                if s.is_closed() && job.stop.is_none() {
                    job.stop = Some((RecordStop::Hangup, None));
                }
                job.check(Instant::now());
                let stop = job.stop;
                deadline = job.deadline().or(deadline);
                if let Some((stop, key)) = stop
                    && let Some(job) = rx.record.take()
                {
                    return job.into_recorded(stop, key);
                }
            }
            let sleep_until = deadline
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(sleep_until) => {}
                _ = closed.wait_for(|c| *c) => {}
            }
        }
    }

    /// Closes the session (hangup): a waiting `play` returns [`PlayOutcome::Closed`],
    /// `record` returns [`RecordStop::Hangup`], `next_digit` returns `Err(Closed)`, any
    /// bridge ends, the socket is closed and the port returns to the pool.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Packet counters.
    pub fn stats(&self) -> SessionStats {
        let st = &self.shared.stats;
        SessionStats {
            rx_packets: st.rx_packets.load(Ordering::Relaxed),
            tx_packets: st.tx_packets.load(Ordering::Relaxed),
            rx_bytes: st.rx_bytes.load(Ordering::Relaxed),
            tx_bytes: st.tx_bytes.load(Ordering::Relaxed),
            tx_dropped: st.tx_dropped.load(Ordering::Relaxed),
            last_rx: lock(&self.shared.rx).last_rx,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Reads the session's socket until it is closed.
async fn receive_loop(
    shared: Arc<Shared>,
    socket: Arc<RtpSocket>,
    mut closed: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 2048];
    let mut errors = 0u32;
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, src)) => {
                    errors = 0;
                    shared.on_datagram(&buf[..n], src, Instant::now());
                }
                Err(e) => {
                    // ICMP errors can surface on UDP reads; they are transient. Give up
                    // only if the socket keeps failing.
                    errors += 1;
                    tracing::debug!(port = shared.port, error = %e, "RTP receive error");
                    if errors > 100 {
                        tracing::warn!(port = shared.port, error = %e, "RTP socket keeps failing; receive stopped");
                        break;
                    }
                }
            },
            _ = closed.wait_for(|c| *c) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(max_ms: u32, silence_ms: u32, now: Instant) -> RecordJob {
        RecordJob {
            id: 1,
            samples: Vec::new(),
            voiced_len: 0,
            max_samples: (max_ms > 0).then(|| max_ms as usize * 8),
            silence: (silence_ms > 0).then(|| Duration::from_millis(silence_ms.into())),
            stop_keys: String::new(),
            started: now,
            last_voice: now,
            next_ts: None,
            stop: None,
        }
    }

    #[test]
    fn recording_fills_gaps_drops_late_packets_and_trims_silence() {
        let t = Instant::now();
        let loud = [crate::g711::ulaw_encode(5000); 160];
        let quiet = [crate::g711::ulaw_encode(0); 160];
        let mut j = job(0, 0, t);
        j.push_packet(Codec::Pcmu, 1, 0, &loud, t);
        j.push_packet(Codec::Pcmu, 1, 320, &loud, t); // one packet lost: 160 zeros
        assert_eq!(j.samples.len(), 480);
        assert!(j.samples[160..320].iter().all(|&s| s == 0));
        j.push_packet(Codec::Pcmu, 1, 160, &loud, t); // the late one is dropped
        assert_eq!(j.samples.len(), 480);
        j.push_packet(Codec::Pcmu, 1, 480, &quiet, t);
        assert_eq!(j.voiced_len, 480);
        let r = j.into_recorded(RecordStop::Silence, None);
        assert_eq!(r.samples.len(), 480, "trailing silence trimmed");
    }

    #[test]
    fn recording_stops_at_max_length_and_after_silence() {
        let t = Instant::now();
        let loud = [crate::g711::alaw_encode(5000); 160];
        let mut j = job(40, 0, t);
        j.push_packet(Codec::Pcma, 1, 0, &loud, t);
        assert!(j.stop.is_none());
        j.push_packet(Codec::Pcma, 1, 160, &loud, t);
        assert_eq!(j.stop, Some((RecordStop::MaxLength, None)));
        assert_eq!(j.samples.len(), 320);

        let mut j = job(0, 100, t);
        j.check(t + Duration::from_millis(99));
        assert!(j.stop.is_none());
        assert_eq!(j.deadline(), Some(t + Duration::from_millis(100)));
        j.check(t + Duration::from_millis(100));
        assert_eq!(j.stop, Some((RecordStop::Silence, None)));
    }

    #[test]
    fn talkspurt_timestamp_follows_the_wall_clock() {
        let t = Instant::now();
        let mut tx = Tx {
            socket: None,
            remote: None,
            latched: None,
            codec: Codec::Pcmu,
            te_pt: None,
            hold: false,
            next_seq: 0,
            last_ts: u32::MAX - 100,
            last_sent: None,
            play: None,
            in_pacer: false,
            bridge_id: None,
        };
        assert_eq!(tx.talkspurt_ts(t), (u32::MAX - 100).wrapping_add(160));
        tx.last_sent = Some(t);
        assert_eq!(
            tx.talkspurt_ts(t),
            (u32::MAX - 100).wrapping_add(160),
            "at least a frame"
        );
        assert_eq!(
            tx.talkspurt_ts(t + Duration::from_millis(1000)),
            (u32::MAX - 100).wrapping_add(8000)
        );
        // No destination while held or for 0.0.0.0 (legacy hold).
        tx.remote = Some("0.0.0.0:4000".parse().unwrap());
        assert_eq!(tx.destination(), None);
        tx.remote = Some("127.0.0.1:4000".parse().unwrap());
        assert!(tx.destination().is_some());
        tx.hold = true;
        assert_eq!(tx.destination(), None);
    }
}
