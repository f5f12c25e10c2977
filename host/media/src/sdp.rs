//! SDP offer/answer (RFC 4566 syntax, RFC 3264 model) for one G.711 audio stream.
//!
//! Hand-written rather than the webrtc-rs `sdp` crate: we need a small, tolerant subset
//! (first usable audio `m=` line, `c=` at session or media level, `rtpmap`, `fmtp`,
//! `ptime`, direction attributes, legacy `c=0.0.0.0` hold), and we must accept what SIP
//! phones really send (missing `rtpmap` for static payload types, leading spaces from
//! SIPp scenarios, bare `\n` line ends, unknown lines), while `sdp` targets WebRTC and is
//! strict about ordering. Parsing never panics on untrusted text.
//!
//! The answer keeps one `m=` line per offered stream (RFC 3264 section 6): the chosen
//! audio stream gets our port, one codec (the first of PCMU/PCMA in the offerer's order)
//! and telephone-event if offered (with the offerer's payload type); every other stream is
//! refused with port 0.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::{Codec, FRAME_MS, Negotiated};

/// Why an SDP could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The text is not SDP (a line of the wrong shape, a bad address or port).
    #[error("invalid SDP at line {line}: {reason}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// There is no usable audio stream (none offered, all with port 0, or not RTP/AVP).
    #[error("SDP has no usable RTP/AVP audio stream")]
    NoAudio,
    /// The audio stream offers neither PCMU (0) nor PCMA (8): answer 488.
    #[error("no common codec: offered payload types {offered:?}, supported PCMU (0) and PCMA (8)")]
    NoCommonCodec {
        /// The payload types that were offered.
        offered: Vec<u8>,
    },
    /// No `c=` line applies to the audio stream.
    #[error("SDP has no connection address (c=) for the audio stream")]
    MissingConnection,
    /// The answer refused the audio stream (port 0).
    #[error("the answer rejected the audio stream (port 0)")]
    Rejected,
}

/// Media direction (RFC 3264 section 5.1). `hold_state` also reports legacy
/// `c=0.0.0.0` hold as [`Direction::Inactive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways (the default).
    #[default]
    SendRecv,
    /// The SDP's author only sends (it puts the other side on hold).
    SendOnly,
    /// The SDP's author only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv`, ...).
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer uses for an offer with this direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// An `a=rtpmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type it describes.
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`, `opus`...).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
}

/// One `m=` line as offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// Media type (`audio`, `video`, `application`...).
    pub media: String,
    /// Port (0 = stream disabled).
    pub port: u16,
    /// Transport protocol (`RTP/AVP`...).
    pub proto: String,
    /// Formats as written.
    pub formats: Vec<String>,
}

/// A parsed offer: every `m=` line (so the answer can refuse the others) and the details
/// of the chosen audio stream (the first audio `m=` line with a non-zero port and an
/// RTP/AVP or RTP/AVPF transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// All media lines in order.
    pub media: Vec<MediaLine>,
    /// Index of the chosen audio stream in `media`.
    pub audio_index: usize,
    /// Its connection address (media-level `c=`, else session-level).
    pub connection: Option<IpAddr>,
    /// Its port.
    pub port: u16,
    /// Its payload types in the offerer's order of preference.
    pub payload_types: Vec<u8>,
    /// Its `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// Its `a=fmtp` lines (payload type, parameters).
    pub fmtps: Vec<(u8, String)>,
    /// Its direction (media level, else session level, else sendrecv).
    pub direction: Direction,
    /// Its `a=ptime`, if given.
    pub ptime_ms: Option<u32>,
}

impl Offer {
    fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    /// The codec a payload type means here: static 0/8, unless an rtpmap says otherwise.
    fn codec_of(&self, pt: u8) -> Option<Codec> {
        let codec = Codec::from_payload_type(pt)?;
        match self.rtpmap(pt) {
            None => Some(codec),
            Some(m) if m.encoding.eq_ignore_ascii_case(codec.name()) && m.clock_rate == 8000 => {
                Some(codec)
            }
            Some(_) => None,
        }
    }

    /// The first PCMU/PCMA payload type in the offerer's order.
    pub fn preferred_codec(&self) -> Option<Codec> {
        self.payload_types.iter().find_map(|&pt| self.codec_of(pt))
    }

    /// The telephone-event/8000 payload type, if offered.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.payload_types.iter().copied().find(|&pt| {
            self.rtpmap(pt).is_some_and(|m| {
                m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == 8000
            })
        })
    }

    /// Where to send RTP, if the stream has an address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.connection.map(|ip| SocketAddr::new(ip, self.port))
    }
}

#[derive(Debug, Default)]
struct ParsedMedia {
    line: Option<MediaLine>,
    connection: Option<IpAddr>,
    rtpmaps: Vec<RtpMap>,
    fmtps: Vec<(u8, String)>,
    direction: Option<Direction>,
    ptime_ms: Option<u32>,
}

#[derive(Debug, Default)]
struct Parsed {
    session: ParsedMedia,
    media: Vec<ParsedMedia>,
}

fn invalid(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Invalid {
        line,
        reason: reason.into(),
    }
}

fn parse_connection(value: &str, line: usize) -> Result<IpAddr, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (net, kind, addr) = (it.next(), it.next(), it.next());
    if net != Some("IN") {
        return Err(invalid(line, "c= network type is not IN"));
    }
    let addr = addr.ok_or_else(|| invalid(line, "c= has no address"))?;
    // Multicast addresses may carry /ttl/count.
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| invalid(line, format!("c= address {addr:?} is not an IP address")))?;
    match (kind, ip) {
        (Some("IP4"), IpAddr::V4(_)) | (Some("IP6"), IpAddr::V6(_)) => Ok(ip),
        _ => Err(invalid(line, "c= address type does not match the address")),
    }
}

fn parse_media_line(value: &str, line: usize) -> Result<MediaLine, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let media = it.next().ok_or_else(|| invalid(line, "empty m= line"))?;
    let port = it.next().ok_or_else(|| invalid(line, "m= has no port"))?;
    let port = port.split('/').next().unwrap_or(port);
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(line, format!("m= port {port:?} is not a number")))?;
    let proto = it
        .next()
        .ok_or_else(|| invalid(line, "m= has no transport"))?;
    Ok(MediaLine {
        media: media.to_string(),
        port,
        proto: proto.to_string(),
        formats: it.map(str::to_string).collect(),
    })
}

fn parse(sdp: &str) -> Result<Parsed, SdpError> {
    let mut parsed = Parsed::default();
    let mut saw_version = false;
    for (i, raw) in sdp.lines().enumerate() {
        let n = i + 1;
        let text = raw.trim();
        if text.is_empty() {
            continue;
        }
        let (kind, value) = text
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or_else(|| invalid(n, "line is not <type>=<value>"))?;
        if kind == "v" {
            saw_version = true;
        }
        let current = parsed.media.last_mut().unwrap_or(&mut parsed.session);
        match kind {
            "m" => parsed.media.push(ParsedMedia {
                line: Some(parse_media_line(value, n)?),
                ..ParsedMedia::default()
            }),
            "c" => current.connection = Some(parse_connection(value, n)?),
            "a" => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                match name {
                    "rtpmap" => {
                        // a=rtpmap:<pt> <name>/<rate>[/<channels>]; a bad one is skipped.
                        let mut it = arg.split_ascii_whitespace();
                        let pt = it.next().and_then(|p| p.parse::<u8>().ok());
                        let mut enc = it.next().unwrap_or("").split('/');
                        let name = enc.next().unwrap_or("");
                        let rate = enc.next().and_then(|r| r.parse::<u32>().ok());
                        if let (Some(pt), Some(rate)) = (pt, rate) {
                            current.rtpmaps.push(RtpMap {
                                payload_type: pt,
                                encoding: name.to_string(),
                                clock_rate: rate,
                            });
                        }
                    }
                    "fmtp" => {
                        let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
                        if let Ok(pt) = pt.parse::<u8>() {
                            current.fmtps.push((pt, params.trim().to_string()));
                        }
                    }
                    "ptime" => current.ptime_ms = arg.trim().parse().ok(),
                    _ => {
                        if let Some(d) = Direction::from_attribute(name) {
                            current.direction = Some(d);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !saw_version {
        return Err(invalid(1, "no v= line"));
    }
    Ok(parsed)
}

fn is_rtp_avp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

fn to_offer(p: Parsed, index: usize) -> Offer {
    let session_connection = p.session.connection;
    let session_direction = p.session.direction;
    let media: Vec<MediaLine> = p.media.iter().filter_map(|m| m.line.clone()).collect();
    let chosen = &p.media[index];
    let line = chosen.line.clone().unwrap_or_else(|| MediaLine {
        media: String::new(),
        port: 0,
        proto: String::new(),
        formats: Vec::new(),
    });
    Offer {
        audio_index: index,
        connection: chosen.connection.or(session_connection),
        port: line.port,
        payload_types: line.formats.iter().filter_map(|f| f.parse().ok()).collect(),
        rtpmaps: chosen.rtpmaps.clone(),
        fmtps: chosen.fmtps.clone(),
        direction: chosen.direction.or(session_direction).unwrap_or_default(),
        ptime_ms: chosen.ptime_ms,
        media,
    }
}

fn first_audio(p: &Parsed, usable_only: bool) -> Option<usize> {
    p.media.iter().position(|m| {
        m.line.as_ref().is_some_and(|l| {
            l.media == "audio" && (!usable_only || (l.port != 0 && is_rtp_avp(&l.proto)))
        })
    })
}

/// Parses an offer and picks its audio stream: the first `m=audio` line with a non-zero
/// port over RTP/AVP(F). Errors: [`SdpError::Invalid`], [`SdpError::NoAudio`].
pub fn parse_offer(sdp: &str) -> Result<Offer, SdpError> {
    let p = parse(sdp)?;
    let index = first_audio(&p, true).ok_or(SdpError::NoAudio)?;
    Ok(to_offer(p, index))
}

fn origin_and_connection(out: &mut String, local: SocketAddr, session_id: u64, version: u64) {
    let kind = if local.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local.ip();
    let _ = write!(
        out,
        "v=0\r\no=plugboard {session_id} {version} IN {kind} {ip}\r\ns=plugboard\r\nc=IN {kind} {ip}\r\nt=0 0\r\n"
    );
}

/// Answers an offer with our address `local` (see the module docs). Version = session id.
/// Errors: [`SdpError::NoCommonCodec`] (answer 488), [`SdpError::MissingConnection`].
pub fn answer(
    offer: &Offer,
    local: SocketAddr,
    session_id: u64,
) -> Result<(String, Negotiated), SdpError> {
    answer_versioned(offer, local, session_id, session_id)
}

/// [`answer`] with an explicit `o=` session version, for answers to re-offers
/// (RFC 3264 section 8: the version grows when the description changes).
pub fn answer_versioned(
    offer: &Offer,
    local: SocketAddr,
    session_id: u64,
    version: u64,
) -> Result<(String, Negotiated), SdpError> {
    let codec = offer
        .preferred_codec()
        .ok_or_else(|| SdpError::NoCommonCodec {
            offered: offer.payload_types.clone(),
        })?;
    let remote = offer.remote().ok_or(SdpError::MissingConnection)?;
    let te = offer.telephone_event_pt();
    let mut out = String::with_capacity(320);
    origin_and_connection(&mut out, local, session_id, version);
    for (i, m) in offer.media.iter().enumerate() {
        if i != offer.audio_index {
            // Refuse every other stream, keeping its line (RFC 3264 section 6).
            let _ = write!(out, "m={} 0 {}", m.media, m.proto);
            for f in &m.formats {
                let _ = write!(out, " {f}");
            }
            out.push_str("\r\n");
            continue;
        }
        let pt = codec.payload_type();
        let _ = write!(out, "m=audio {} RTP/AVP {pt}", local.port());
        if let Some(te) = te {
            let _ = write!(out, " {te}");
        }
        let _ = write!(out, "\r\na=rtpmap:{pt} {}/8000\r\n", codec.name());
        if let Some(te) = te {
            let _ = write!(
                out,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        let _ = write!(
            out,
            "a=ptime:{FRAME_MS}\r\na={}\r\n",
            offer.direction.answer().attribute()
        );
    }
    let negotiated = Negotiated {
        codec,
        remote,
        telephone_event_pt: te,
        ptime_ms: FRAME_MS,
    };
    Ok((out, negotiated))
}

/// Our offer (for outbound legs): PCMU, PCMA, telephone-event/8000 on payload type 101
/// (events 0-16), ptime 20, sendrecv.
pub fn make_offer(local: SocketAddr, session_id: u64, version: u64) -> String {
    let mut out = String::with_capacity(320);
    origin_and_connection(&mut out, local, session_id, version);
    let _ = write!(
        out,
        "m=audio {} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:{FRAME_MS}\r\n\
         a=sendrecv\r\n",
        local.port()
    );
    out
}

/// Parses the answer to our offer: the first audio stream, the first of its payload types
/// that is PCMU or PCMA, its telephone-event payload type.
/// Errors: [`SdpError::Rejected`] for port 0, [`SdpError::NoCommonCodec`],
/// [`SdpError::MissingConnection`], [`SdpError::NoAudio`], [`SdpError::Invalid`].
pub fn parse_answer(sdp: &str) -> Result<Negotiated, SdpError> {
    let p = parse(sdp)?;
    let index = first_audio(&p, false).ok_or(SdpError::NoAudio)?;
    let offer = to_offer(p, index);
    if offer.port == 0 {
        return Err(SdpError::Rejected);
    }
    let codec = offer
        .preferred_codec()
        .ok_or_else(|| SdpError::NoCommonCodec {
            offered: offer.payload_types.clone(),
        })?;
    let remote = offer.remote().ok_or(SdpError::MissingConnection)?;
    Ok(Negotiated {
        codec,
        remote,
        telephone_event_pt: offer.telephone_event_pt(),
        ptime_ms: FRAME_MS,
    })
}

/// The direction an SDP (offer or answer) asks for, for hold detection: the audio stream's
/// direction attribute (media level, else session level, else sendrecv). A stream with
/// port 0 or the legacy hold address `c=0.0.0.0` (RFC 2543) is [`Direction::Inactive`].
/// Unparseable SDP gives sendrecv (it changes nothing).
pub fn hold_state(sdp: &str) -> Direction {
    let Ok(p) = parse(sdp) else {
        return Direction::SendRecv;
    };
    let Some(index) = first_audio(&p, true).or_else(|| first_audio(&p, false)) else {
        return Direction::SendRecv;
    };
    let offer = to_offer(p, index);
    if offer.port == 0 || offer.connection.is_some_and(|ip| ip.is_unspecified()) {
        return Direction::Inactive;
    }
    offer.direction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "192.0.2.10:40000".parse().unwrap()
    }

    const SIPP_UAC: &str = "v=0\r\n\
        o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 6000 RTP/AVP 0\r\n\
        a=rtpmap:0 PCMU/8000\r\n";

    /// SIPp's uac_pcap scenario, with the leading spaces of the XML file.
    const SIPP_PCAP: &str = "      v=0\n\
        \x20     o=user1 53655765 2353687637 IN IP4 10.0.0.5\n\
        \x20     s=-\n\
        \x20     c=IN IP4 10.0.0.5\n\
        \x20     t=0 0\n\
        \x20     m=audio 6002 RTP/AVP 8 101\n\
        \x20     a=rtpmap:8 PCMA/8000\n\
        \x20     a=rtpmap:101 telephone-event/8000\n\
        \x20     a=fmtp:101 0-11,16\n\n";

    const BARESIP: &str = "v=0\r\n\
        o=- 2890844526 2890842807 IN IP4 192.168.1.20\r\n\
        s=-\r\n\
        c=IN IP4 192.168.1.20\r\n\
        t=0 0\r\n\
        m=audio 10000 RTP/AVP 96 9 0 8 101\r\n\
        b=AS:64\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
        a=rtpmap:9 G722/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n\
        a=rtcp-mux\r\n\
        a=label:1\r\n";

    #[test]
    fn answers_sipp_pcmu_offer() {
        let offer = parse_offer(SIPP_UAC).unwrap();
        let (sdp, n) = answer(&offer, local(), 77).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(n.telephone_event_pt, None);
        assert_eq!(n.ptime_ms, 20);
        assert!(
            sdp.starts_with("v=0\r\no=plugboard 77 77 IN IP4 192.0.2.10\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("c=IN IP4 192.0.2.10\r\n"));
        assert!(sdp.contains("m=audio 40000 RTP/AVP 0\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(!sdp.contains("telephone-event"));
        assert!(sdp.contains("a=sendrecv\r\n"));
        // Our answer is itself parseable as an answer pointing at us.
        let back = parse_answer(&sdp).unwrap();
        assert_eq!(back.remote, local());
        assert_eq!(back.codec, Codec::Pcmu);
    }

    #[test]
    fn answers_sipp_pcma_only_offer_with_its_event_pt() {
        let offer = parse_offer(SIPP_PCAP).unwrap();
        let (sdp, n) = answer(&offer, local(), 1).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event_pt, Some(101));
        assert_eq!(n.remote, "10.0.0.5:6002".parse().unwrap());
        assert!(sdp.contains("m=audio 40000 RTP/AVP 8 101\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    }

    #[test]
    fn answers_baresip_offer_choosing_first_g711_in_offer_order() {
        let offer = parse_offer(BARESIP).unwrap();
        assert_eq!(offer.payload_types, vec![96, 9, 0, 8, 101]);
        assert_eq!(offer.ptime_ms, Some(20));
        let (sdp, n) = answer(&offer, local(), 5).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.telephone_event_pt, Some(101));
        assert!(sdp.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{sdp}");
        assert!(!sdp.contains("opus"));
    }

    #[test]
    fn prefers_pcma_when_offered_first() {
        let sdp = BARESIP.replace("RTP/AVP 96 9 0 8 101", "RTP/AVP 8 0 101");
        let (_, n) = answer(&parse_offer(&sdp).unwrap(), local(), 5).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
    }

    #[test]
    fn dynamic_telephone_event_pt_is_echoed() {
        let sdp = SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP 0 96")
            + "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n";
        let (text, n) = answer(&parse_offer(&sdp).unwrap(), local(), 5).unwrap();
        assert_eq!(n.telephone_event_pt, Some(96));
        assert!(text.contains("m=audio 40000 RTP/AVP 0 96\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:96 telephone-event/8000\r\n"));
        // telephone-event at another clock rate is not ours
        let wide = sdp.replace("96 telephone-event/8000", "96 telephone-event/48000");
        let (_, n) = answer(&parse_offer(&wide).unwrap(), local(), 5).unwrap();
        assert_eq!(n.telephone_event_pt, None);
    }

    #[test]
    fn no_common_codec_is_an_error_for_488() {
        let sdp = BARESIP.replace("RTP/AVP 96 9 0 8 101", "RTP/AVP 96 9 101");
        let err = answer(&parse_offer(&sdp).unwrap(), local(), 5).unwrap_err();
        assert_eq!(
            err,
            SdpError::NoCommonCodec {
                offered: vec![96, 9, 101]
            }
        );
        // PT 0 remapped to something else by rtpmap is not PCMU
        let odd = SIPP_UAC.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 G729/8000");
        assert!(matches!(
            answer(&parse_offer(&odd).unwrap(), local(), 5),
            Err(SdpError::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn media_level_connection_wins_and_other_streams_are_refused() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
                   m=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                   m=audio 5000 RTP/AVP 8\r\nc=IN IP4 203.0.113.9\r\na=sendonly\r\n";
        let offer = parse_offer(sdp).unwrap();
        assert_eq!(offer.audio_index, 1);
        assert_eq!(offer.direction, Direction::SendOnly);
        let (text, n) = answer(&offer, local(), 9).unwrap();
        assert_eq!(n.remote, "203.0.113.9:5000".parse().unwrap());
        assert_eq!(n.codec, Codec::Pcma, "static PT without rtpmap");
        let video = text
            .find("m=video 0 RTP/AVP 96\r\n")
            .expect("video refused");
        let audio = text.find("m=audio 40000").expect("audio");
        assert!(video < audio, "m= lines keep the offer's order");
        assert!(
            text.contains("a=recvonly\r\n"),
            "sendonly offer gets recvonly"
        );
    }

    #[test]
    fn media_level_connection_without_session_level() {
        let sdp = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\nc=IN IP4 203.0.113.9\n";
        let (_, n) = answer(&parse_offer(sdp).unwrap(), local(), 9).unwrap();
        assert_eq!(n.remote, "203.0.113.9:5000".parse().unwrap());
        let none = "v=0\nm=audio 5000 RTP/AVP 0\n";
        assert_eq!(
            answer(&parse_offer(none).unwrap(), local(), 9).unwrap_err(),
            SdpError::MissingConnection
        );
    }

    #[test]
    fn disabled_and_secure_audio_streams_are_skipped() {
        let sdp = "v=0\nc=IN IP4 203.0.113.9\nm=audio 0 RTP/AVP 0\nm=audio 7000 RTP/SAVP 0\nm=audio 7002 RTP/AVP 8\n";
        let offer = parse_offer(sdp).unwrap();
        assert_eq!(offer.audio_index, 2);
        let (text, _) = answer(&offer, local(), 1).unwrap();
        assert!(text.contains("m=audio 0 RTP/AVP 0\r\n"));
        assert!(text.contains("m=audio 0 RTP/SAVP 0\r\n"));
        assert_eq!(
            parse_offer("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            parse_offer("v=0\nc=IN IP4 1.2.3.4\nm=video 5 RTP/AVP 96\n"),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn ipv6_offer_and_answer() {
        let sdp = "v=0\nc=IN IP6 2001:db8::1\nm=audio 5000 RTP/AVP 0\n";
        let local6: SocketAddr = "[2001:db8::2]:40002".parse().unwrap();
        let (text, n) = answer(&parse_offer(sdp).unwrap(), local6, 3).unwrap();
        assert_eq!(n.remote, "[2001:db8::1]:5000".parse().unwrap());
        assert!(text.contains("c=IN IP6 2001:db8::2\r\n"), "{text}");
    }

    #[test]
    fn invalid_sdp_is_reported_with_its_line() {
        let err = parse_offer("v=0\nc=IN IP4 not-an-ip\nm=audio 1 RTP/AVP 0\n").unwrap_err();
        assert!(matches!(err, SdpError::Invalid { line: 2, .. }), "{err}");
        let err = parse_offer("v=0\nm=audio port RTP/AVP 0\n").unwrap_err();
        assert!(matches!(err, SdpError::Invalid { line: 2, .. }), "{err}");
        assert!(matches!(
            parse_offer("hello world"),
            Err(SdpError::Invalid { .. })
        ));
        assert!(matches!(parse_offer(""), Err(SdpError::Invalid { .. })));
        // Truncations of a real offer never panic.
        for n in 0..BARESIP.len() {
            let _ = parse_offer(&BARESIP[..n]);
        }
    }

    #[test]
    fn make_offer_is_answered_by_ourselves() {
        let offer_text = make_offer(local(), 42, 2);
        assert!(offer_text.contains("o=plugboard 42 2 IN IP4 192.0.2.10\r\n"));
        assert!(offer_text.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"));
        assert!(offer_text.contains("a=fmtp:101 0-16\r\n"));
        assert!(offer_text.contains("a=ptime:20\r\n"));
        let offer = parse_offer(&offer_text).unwrap();
        let peer: SocketAddr = "198.51.100.7:30000".parse().unwrap();
        let (ans, n) = answer(&offer, peer, 1).unwrap();
        assert_eq!(n.remote, local());
        let back = parse_answer(&ans).unwrap();
        assert_eq!(back.codec, Codec::Pcmu);
        assert_eq!(back.telephone_event_pt, Some(101));
        assert_eq!(back.remote, peer);
    }

    #[test]
    fn parse_answer_errors() {
        assert_eq!(
            parse_answer("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0\n"),
            Err(SdpError::Rejected)
        );
        assert!(matches!(
            parse_answer("v=0\nc=IN IP4 1.2.3.4\nm=audio 5 RTP/AVP 18\n"),
            Err(SdpError::NoCommonCodec { .. })
        ));
        let n = parse_answer("v=0\nc=IN IP4 1.2.3.4\nm=audio 5 RTP/AVP 18 8 0\n").unwrap();
        assert_eq!(n.codec, Codec::Pcma);
    }

    #[test]
    fn hold_states() {
        assert_eq!(hold_state(SIPP_UAC), Direction::SendRecv);
        assert_eq!(
            hold_state(&format!("{SIPP_UAC}a=sendonly\r\n")),
            Direction::SendOnly
        );
        assert_eq!(
            hold_state(&format!("{SIPP_UAC}a=recvonly\r\n")),
            Direction::RecvOnly
        );
        assert_eq!(
            hold_state(&format!("{SIPP_UAC}a=inactive\r\n")),
            Direction::Inactive
        );
        // session-level attribute applies when the media has none
        let session_level = SIPP_UAC.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        assert_eq!(hold_state(&session_level), Direction::SendOnly);
        // legacy hold
        let legacy = SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(hold_state(&legacy), Direction::Inactive);
        assert_eq!(
            hold_state("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0\n"),
            Direction::Inactive
        );
        assert_eq!(hold_state("garbage"), Direction::SendRecv);
    }
}
