//! Bridging two sessions (the B2BUA media relay).
//!
//! Each direction is a [`BridgeOut`] held by the receiving session: a packet received on
//! leg A is rewritten and sent from leg B's socket to B's remote. Each leg keeps its own
//! SSRC, and sequence numbers and timestamps are shifted by offsets fixed at the first
//! forwarded packet (and again if the source SSRC changes), so each phone sees one
//! continuous stream across prompts and bridges, with loss and reordering preserved
//! rather than hidden. Audio is transcoded PCMU<->PCMA when the legs negotiated
//! different codecs; telephone-events pass through with the payload type remapped to the
//! one B negotiated (and are dropped if B negotiated none; they are still detected on
//! A). Other payload types (comfort noise, unknown) are dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::lock;
use super::session::{Session, Shared};
use crate::rtp::{self, RtpHeader};
use crate::{Codec, g711};

static NEXT_BRIDGE_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Copy)]
struct Mapping {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// One direction of a bridge, stored in the receiving session's state.
pub(crate) struct BridgeOut {
    pub(crate) id: u64,
    peer: Weak<Shared>,
    mapping: Option<Mapping>,
}

impl BridgeOut {
    /// Forwards one received packet to the peer. `audio` is the codec of an audio packet,
    /// `None` for a telephone-event.
    pub(crate) fn forward(
        &mut self,
        header: &RtpHeader,
        payload: &[u8],
        audio: Option<Codec>,
        scratch: &mut Vec<u8>,
        now: Instant,
    ) {
        let Some(peer) = self.peer.upgrade() else {
            return;
        };
        let mut tx = lock(&peer.tx);
        if tx.bridge_id != Some(self.id) {
            return;
        }
        let Some(to) = tx.destination() else {
            return;
        };
        let out_pt = match audio {
            Some(_) => tx.codec.payload_type(),
            None => match tx.te_pt {
                Some(pt) => pt,
                None => return,
            },
        };
        let fresh = self.mapping.is_none_or(|m| m.ssrc != header.ssrc);
        if fresh {
            let start_ts = tx.talkspurt_ts(now);
            self.mapping = Some(Mapping {
                ssrc: header.ssrc,
                seq_offset: tx.next_seq.wrapping_sub(header.sequence),
                ts_offset: start_ts.wrapping_sub(header.timestamp),
            });
        }
        let Some(m) = self.mapping else { return };
        let seq = header.sequence.wrapping_add(m.seq_offset);
        let ts = header.timestamp.wrapping_add(m.ts_offset);
        let mut out = RtpHeader::new(out_pt, seq, ts, peer.ssrc);
        out.marker = header.marker || fresh;
        // Keep the leg's own counters ahead of what was sent, so a later play continues.
        if seq.wrapping_sub(tx.next_seq) < 0x8000 {
            tx.next_seq = seq.wrapping_add(1);
        }
        if fresh || ts.wrapping_sub(tx.last_ts) < 0x8000_0000 {
            tx.last_ts = ts;
        }
        tx.last_sent = Some(now);

        let mut h = [0u8; rtp::HEADER_LEN];
        out.write(&mut h);
        scratch.clear();
        scratch.extend_from_slice(&h);
        match (audio, tx.codec) {
            (Some(Codec::Pcmu), Codec::Pcma) => {
                scratch.extend(payload.iter().map(|&c| g711::ulaw_to_alaw(c)))
            }
            (Some(Codec::Pcma), Codec::Pcmu) => {
                scratch.extend(payload.iter().map(|&c| g711::alaw_to_ulaw(c)))
            }
            _ => scratch.extend_from_slice(payload),
        }
        tx.send(&peer.stats, scratch, to);
    }

    /// Removes the reverse direction from the peer (this session is closing).
    pub(crate) fn unlink_peer(self) {
        if let Some(peer) = self.peer.upgrade() {
            unlink(&peer, self.id);
        }
    }
}

/// Removes bridge `id` from one session, if it is still the session's bridge.
fn unlink(s: &Shared, id: u64) {
    {
        let mut tx = lock(&s.tx);
        if tx.bridge_id == Some(id) {
            tx.bridge_id = None;
        }
    }
    let mut rx = lock(&s.rx);
    if rx.bridge.as_ref().is_some_and(|b| b.id == id) {
        rx.bridge = None;
    }
}

/// Relays media between two sessions: packets received on `a` are sent from `b` to b's
/// remote and vice versa (see the module docs for the rewriting). A play running on
/// either leg ends with `Interrupted`, and `play` on a bridged leg returns `Interrupted`
/// at once. DTMF is still detected and queued on both legs. The bridge ends when the
/// handle is dropped or [`BridgeHandle::stop`] is called, or when either session closes;
/// afterwards both sessions can play and record again.
pub fn bridge(a: &Session, b: &Session) -> BridgeHandle {
    let id = NEXT_BRIDGE_ID.fetch_add(1, Ordering::Relaxed);
    for (from, to) in [(a, b), (b, a)] {
        let from = from.shared();
        {
            let mut tx = lock(&from.tx);
            tx.bridge_id = Some(id);
        }
        from.interrupt_play();
        lock(&from.rx).bridge = Some(BridgeOut {
            id,
            peer: Arc::downgrade(to.shared()),
            mapping: None,
        });
    }
    BridgeHandle {
        id,
        a: Arc::downgrade(a.shared()),
        b: Arc::downgrade(b.shared()),
        stopped: AtomicBool::new(false),
    }
}

/// Keeps a bridge alive; dropping it ends the bridge.
#[derive(Debug)]
pub struct BridgeHandle {
    id: u64,
    a: Weak<Shared>,
    b: Weak<Shared>,
    stopped: AtomicBool,
}

impl BridgeHandle {
    /// Ends the bridge (idempotent). Packets stop being relayed at once.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for side in [&self.a, &self.b] {
            if let Some(s) = side.upgrade() {
                unlink(&s, self.id);
            }
        }
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
