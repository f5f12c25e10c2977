//! DTMF from RFC 4733 telephone-event packets.
//!
//! A key press is sent as a series of packets that all carry the RTP timestamp of the
//! event start: updates with a growing duration, then (usually) three copies of the
//! end packet. [`DtmfDetector`] turns that series into exactly one digit, reported on the
//! first packet seen for the event (so barge-in reacts at once), and keyed by
//! (SSRC, RTP timestamp) as RFC 4733 section 2.5.1 prescribes. A few recent keys are
//! remembered so a late, reordered retransmission of the previous event's end packet
//! does not produce a second digit. Long events (> 8 s) are split by the sender into
//! segments with new timestamps (section 2.5.1.3); a segment that continues an event that
//! has not ended is recognised and not reported again.

/// One decoded telephone-event payload (RFC 4733 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 `A`-`D`, 16 flash.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Volume in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units (8 kHz).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Encodes the 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Parses a telephone-event payload. Only the first event block is read (a payload may
/// carry redundant blocks); returns `None` if the payload is shorter than 4 bytes.
pub fn parse_event(payload: &[u8]) -> Option<TelephoneEvent> {
    let b = payload.get(..4)?;
    Some(TelephoneEvent {
        event: b[0],
        end: b[1] & 0x80 != 0,
        volume: b[1] & 0x3F,
        duration: u16::from_be_bytes([b[2], b[3]]),
    })
}

/// Maps an event code to its key: `'0'`-`'9'`, `'*'`, `'#'`, `'A'`-`'D'`; `None` for other
/// events (flash, tones).
pub fn event_to_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Maps a key to its event code (the inverse of [`event_to_char`]; lower-case `a`-`d` accepted).
pub fn char_to_event(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        'a'..='d' => Some(key as u8 - b'a' + 12),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    ssrc: u32,
    timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    key: Key,
    event: u8,
    duration: u16,
    ended: bool,
}

const RECENT: usize = 8;

/// A segment this long (near the 16-bit duration limit) may be continued by a new
/// segment of the same event (RFC 4733 section 2.5.1.3).
const LONG_SEGMENT_MIN: u16 = u16::MAX - 1600;

/// Turns RFC 4733 packets into digits, one per key press (see the module docs).
#[derive(Debug, Default)]
pub struct DtmfDetector {
    recent: [Option<Key>; RECENT],
    next_slot: usize,
    current: Option<Current>,
}

impl DtmfDetector {
    /// A detector with no history.
    pub fn new() -> DtmfDetector {
        DtmfDetector::default()
    }

    /// Feeds one telephone-event packet (its SSRC, RTP timestamp and payload).
    /// Returns the key on the first packet of a new event, `None` otherwise
    /// (duplicates, updates, end retransmissions, non-key events, malformed payloads).
    pub fn on_packet(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = parse_event(payload)?;
        let key = Key { ssrc, timestamp };
        if self.recent.contains(&Some(key)) {
            if let Some(cur) = self.current.as_mut().filter(|c| c.key == key) {
                cur.duration = cur.duration.max(ev.duration);
                cur.ended |= ev.end;
            }
            return None;
        }
        // A long-duration event continues in a new segment with a new timestamp.
        let continuation = self.current.is_some_and(|c| {
            !c.ended
                && c.key.ssrc == ssrc
                && c.event == ev.event
                && c.duration >= LONG_SEGMENT_MIN
                && timestamp.wrapping_sub(c.key.timestamp) <= u32::from(c.duration) + 1600
        });
        self.recent[self.next_slot] = Some(key);
        self.next_slot = (self.next_slot + 1) % RECENT;
        self.current = Some(Current {
            key,
            event: ev.event,
            duration: ev.duration,
            ended: ev.end,
        });
        if continuation {
            return None;
        }
        event_to_char(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// The packets a typical phone sends for one key press starting at `ts`.
    fn press(d: &mut DtmfDetector, event: u8, ts: u32) -> Vec<char> {
        let mut out = Vec::new();
        for dur in [160u16, 320, 480, 640, 800] {
            out.extend(d.on_packet(7, ts, &pkt(event, false, dur)));
        }
        for _ in 0..3 {
            out.extend(d.on_packet(7, ts, &pkt(event, true, 960)));
        }
        out
    }

    #[test]
    fn codes_map_to_keys_and_back() {
        let keys = "0123456789*#ABCD";
        for (code, key) in keys.chars().enumerate() {
            assert_eq!(event_to_char(code as u8), Some(key));
            assert_eq!(char_to_event(key), Some(code as u8));
        }
        assert_eq!(event_to_char(16), None);
        assert_eq!(char_to_event('x'), None);
        assert_eq!(char_to_event('d'), Some(15));
    }

    #[test]
    fn payload_round_trips() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 63,
            duration: 1234,
        };
        assert_eq!(parse_event(&e.to_bytes()), Some(e));
        assert_eq!(parse_event(&[1, 2, 3]), None);
    }

    #[test]
    fn one_digit_per_event_with_end_retransmissions() {
        let mut d = DtmfDetector::new();
        assert_eq!(press(&mut d, 1, 1000), vec!['1']);
        assert_eq!(
            press(&mut d, 1, 9000),
            vec!['1'],
            "same key again is a new event"
        );
        assert_eq!(press(&mut d, 11, 17000), vec!['#']);
    }

    #[test]
    fn late_end_packet_of_previous_event_is_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(press(&mut d, 4, 1000), vec!['4']);
        assert_eq!(d.on_packet(7, 5000, &pkt(5, false, 160)), Some('5'));
        assert_eq!(d.on_packet(7, 1000, &pkt(4, true, 960)), None);
        assert_eq!(d.on_packet(7, 5000, &pkt(5, true, 480)), None);
    }

    #[test]
    fn event_seen_first_by_its_end_packet_is_reported_once() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_packet(7, 400, &pkt(9, true, 800)), Some('9'));
        assert_eq!(d.on_packet(7, 400, &pkt(9, true, 800)), None);
    }

    #[test]
    fn long_event_segments_are_one_digit() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_packet(7, 0, &pkt(0, false, 65535)), Some('0'));
        assert_eq!(d.on_packet(7, 65535, &pkt(0, false, 160)), None);
        assert_eq!(d.on_packet(7, 65535, &pkt(0, true, 800)), None);
        assert_eq!(d.on_packet(7, 80000, &pkt(0, false, 160)), Some('0'));
    }

    #[test]
    fn quick_repeat_after_lost_end_packets_is_a_second_digit() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_packet(7, 1000, &pkt(1, false, 800)), Some('1'));
        assert_eq!(d.on_packet(7, 2600, &pkt(1, false, 160)), Some('1'));
    }

    #[test]
    fn different_ssrc_same_timestamp_is_a_new_event() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_packet(1, 100, &pkt(2, true, 800)), Some('2'));
        assert_eq!(d.on_packet(2, 100, &pkt(2, true, 800)), Some('2'));
    }

    #[test]
    fn flash_and_malformed_give_nothing() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_packet(7, 100, &pkt(16, false, 160)), None);
        assert_eq!(d.on_packet(7, 200, &[1]), None);
    }
}
