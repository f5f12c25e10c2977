//! plugboard-media: the media plane of the PBX.
//!
//! The host is a B2BUA that anchors media: every call leg has an RTP endpoint here, and a
//! plugin (voicemail, attendant) never sees packets. It asks the host to play prompts,
//! collect DTMF, record or bridge to another leg, and this crate does the work.
//!
//! The crate is split like quinn's proto/driver pair: the protocol pieces are plain
//! functions and state machines with no sockets, clock or tokio, so they are tested
//! directly and never panic on untrusted bytes:
//!
//! - [`g711`]: table-based µ-law/A-law,
//! - [`wav`]: prompt files in and recordings out,
//! - [`rtp`]: packet parse/build,
//! - [`dtmf`]: RFC 4733 telephone-events to one digit per key press,
//! - [`sdp`]: offer/answer (RFC 3264) for PCMU, PCMA and telephone-event.
//!
//! [`engine`] is the tokio part: RTP sockets from a configured port range, a single pacer
//! that sends the next 20 ms frame of every playing session, one receive task per session
//! (DTMF, recording, symmetric-RTP latching, bridging).

pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod rtp;
pub mod sdp;
pub mod wav;

use std::net::SocketAddr;
use std::sync::Arc;

pub use engine::{
    BridgeHandle, Closed, MediaConfig, MediaEngine, MediaError, PacerStats, PlayOutcome,
    RecordOptions, RecordStop, Recorded, Session, SessionStats, bridge,
};
pub use sdp::{Direction, Offer, SdpError};

/// Samples per second of every stream this crate handles.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;
/// Frame duration in milliseconds.
pub const FRAME_MS: u32 = 20;

/// 8 kHz mono linear PCM. Cheap to clone: the samples are shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audio {
    /// The samples, 8000 per second.
    pub samples: Arc<[i16]>,
}

impl Audio {
    /// Wraps samples (8 kHz mono).
    pub fn new(samples: Vec<i16>) -> Audio {
        Audio {
            samples: samples.into(),
        }
    }

    /// `ms` milliseconds of digital silence.
    pub fn silence(ms: u32) -> Audio {
        let n = (u64::from(ms) * u64::from(SAMPLE_RATE) / 1000) as usize;
        Audio::new(vec![0; n])
    }

    /// Length in milliseconds (rounded down).
    pub fn duration_ms(&self) -> u32 {
        u32::try_from(self.samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE)).unwrap_or(u32::MAX)
    }

    /// The parts one after another.
    pub fn concat(parts: &[Audio]) -> Audio {
        let len = parts.iter().map(|p| p.samples.len()).sum();
        let mut v = Vec::with_capacity(len);
        for p in parts {
            v.extend_from_slice(&p.samples);
        }
        Audio::new(v)
    }
}

/// The audio codecs the host speaks: G.711 with its static payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, payload type 0.
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (0 or 8).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec for a static payload type.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`PCMU`, `PCMA`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Encodes one sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => g711::ulaw_encode(sample),
            Codec::Pcma => g711::alaw_encode(sample),
        }
    }

    /// Decodes one code.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_decode(code),
            Codec::Pcma => g711::alaw_decode(code),
        }
    }
}

/// The outcome of SDP negotiation for one leg: what to send, where, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides agreed on.
    pub codec: Codec,
    /// Where the peer wants RTP (may be replaced by symmetric-RTP latching).
    pub remote: SocketAddr,
    /// The peer's telephone-event payload type, if DTMF events were negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Packetisation time; the engine always sends 20 ms frames.
    pub ptime_ms: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_helpers() {
        let s = Audio::silence(250);
        assert_eq!(s.samples.len(), 2000);
        assert_eq!(s.duration_ms(), 250);
        let c = Audio::concat(&[s.clone(), Audio::new(vec![1, 2, 3]), Audio::silence(10)]);
        assert_eq!(c.samples.len(), 2083);
        assert_eq!(&c.samples[2000..2003], &[1, 2, 3]);
        assert_eq!(Audio::concat(&[]).duration_ms(), 0);
    }

    #[test]
    fn codec_payload_types() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(3), None);
        assert_eq!(Codec::Pcma.decode(Codec::Pcma.encode(0)), 8);
    }
}
