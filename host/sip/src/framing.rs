//! Message framing for stream transports (TCP, TLS; RFC 3261 18.3).
//!
//! On a stream the only message boundary is Content-Length, so it is
//! mandatory, and a missing, negative or conflicting value leaves no way to
//! find the next message: the connection must be closed. The shape follows
//! tokio-rs/mini-redis `Connection`: the driver pushes whatever bytes it
//! read, then calls [`StreamFramer::next`] until it returns `None`
//! ("incomplete" is not an error, it means "read more").
//!
//! CR and LF octets between messages are skipped: RFC 3261 7.5 tells
//! stream receivers to ignore CRLFs before a start line, and RFC 5626 3.5.1
//! uses a double CRLF as a keep-alive.

use std::fmt;

use crate::message::Message;
use crate::parse::{ParseError, find_head_end, head_content_length, parse_message};

/// What went wrong while framing a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The message was framed correctly but does not parse (bad start line,
    /// bad header line, ...). The raw bytes are attached so the caller can
    /// answer with [`crate::parse::reject_response`]. Framing continues with
    /// the next message: this error is not fatal.
    Message(ParseError, Vec<u8>),
    /// A header section or a whole message exceeds the size limit. Fatal.
    TooLarge { limit: usize },
    /// A message without Content-Length (mandatory on streams). Fatal.
    MissingContentLength,
    /// A negative, non-numeric, overflowing or conflicting Content-Length.
    /// Fatal.
    BadContentLength(ParseError),
}

impl FrameError {
    /// True when the connection must be closed: framing is lost.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::Message(..))
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Message(e, _) => write!(f, "malformed message: {e}"),
            FrameError::TooLarge { limit } => {
                write!(f, "message larger than the limit of {limit} octets")
            }
            FrameError::MissingContentLength => {
                f.write_str("message without Content-Length on a stream transport")
            }
            FrameError::BadContentLength(e) => write!(f, "bad Content-Length: {}", e.reason),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits a byte stream into SIP messages by Content-Length.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Octets of `buf` already handed out.
    pos: usize,
    /// Offset from `pos` of the first header line not yet scanned for the
    /// empty line (always at a line start); avoids rescanning on every push.
    scanned: usize,
    max: usize,
    failed: Option<FrameError>,
}

impl StreamFramer {
    /// A framer that refuses messages (header section plus body) larger than
    /// `max_message` octets.
    pub fn new(max_message: usize) -> StreamFramer {
        StreamFramer {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            max: max_message,
            failed: None,
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Octets buffered but not yet handed out as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next message: `None` when more bytes are needed, `Some(Ok(_))` for
    /// a message, `Some(Err(_))` for an error. After a fatal error (see
    /// [`FrameError::is_fatal`]) every call returns that error again and the
    /// caller must close the connection.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Message, FrameError>> {
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        if self.scanned == 0 {
            let skip = self.buf[self.pos..]
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            self.pos += skip;
        }
        let avail = &self.buf[self.pos..];
        if avail.is_empty() {
            return None;
        }
        let Some((head_len, body_start)) = find_head_end(avail, self.scanned) else {
            if avail.len() > self.max {
                return Some(Err(self.fail(FrameError::TooLarge { limit: self.max })));
            }
            self.scanned = last_line_start(avail, self.scanned);
            return None;
        };
        self.scanned = head_len;
        let cl = match head_content_length(&avail[..head_len]) {
            Ok(Some(n)) => n,
            Ok(None) => return Some(Err(self.fail(FrameError::MissingContentLength))),
            Err(e) => return Some(Err(self.fail(FrameError::BadContentLength(e)))),
        };
        let total = match body_start.checked_add(cl) {
            Some(t) if t <= self.max => t,
            _ => return Some(Err(self.fail(FrameError::TooLarge { limit: self.max }))),
        };
        if avail.len() < total {
            return None;
        }
        let raw = &avail[..total];
        let item = match parse_message(raw) {
            Ok(m) => Ok(m),
            Err(e) => Err(FrameError::Message(e, raw.to_vec())),
        };
        self.pos += total;
        self.scanned = 0;
        Some(item)
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.pos = 0;
        e
    }
}

/// The start of the last (incomplete) line of `b`, searching from `from`.
fn last_line_start(b: &[u8], from: usize) -> usize {
    match b
        .get(from..)
        .and_then(|t| t.iter().rposition(|c| *c == b'\n'))
    {
        Some(i) => from + i + 1,
        None => from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u32, body: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK{n}\r\nCSeq: {n} OPTIONS\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn drain(f: &mut StreamFramer) -> Vec<Result<Message, FrameError>> {
        std::iter::from_fn(|| f.next()).take(100).collect()
    }

    #[test]
    fn frames_by_content_length_byte_by_byte() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend(msg(1, "hello"));
        stream.extend(b"\r\n\r\n");
        stream.extend(msg(2, ""));
        stream.extend(msg(3, "x\r\n\r\ny"));
        let mut f = StreamFramer::new(4096);
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            got.extend(drain(&mut f));
        }
        let seqs: Vec<u32> = got
            .into_iter()
            .map(|m| m.unwrap().headers().cseq().unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn incomplete_body_waits() {
        let mut f = StreamFramer::new(4096);
        let m = msg(1, "hello");
        f.push(&m[..m.len() - 1]);
        assert!(f.next().is_none());
        f.push(&m[m.len() - 1..]);
        match f.next() {
            Some(Ok(Message::Request(r))) => assert_eq!(r.body, b"hello"),
            other => panic!("{other:?}"),
        }
        assert!(f.next().is_none());
    }

    #[test]
    fn missing_or_bad_content_length_is_fatal() {
        for (head, want_missing) in [
            (
                "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n",
                true,
            ),
            ("OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n", false),
            ("OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\n", false),
        ] {
            let mut f = StreamFramer::new(4096);
            f.push(head.as_bytes());
            let e = f.next().unwrap().unwrap_err();
            assert!(e.is_fatal());
            assert_eq!(
                e == FrameError::MissingContentLength,
                want_missing,
                "{head}"
            );
            // Sticky.
            f.push(&msg(1, ""));
            assert_eq!(f.next().unwrap().unwrap_err(), e);
        }
    }

    #[test]
    fn size_limit() {
        let mut f = StreamFramer::new(64);
        f.push(&msg(1, ""));
        assert_eq!(
            f.next().unwrap().unwrap_err(),
            FrameError::TooLarge { limit: 64 }
        );
        // A header section that never ends.
        let mut f = StreamFramer::new(64);
        f.push(&[b'a'; 65]);
        assert_eq!(
            f.next().unwrap().unwrap_err(),
            FrameError::TooLarge { limit: 64 }
        );
        // Content-Length over the limit is refused before the body arrives.
        let mut f = StreamFramer::new(200);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 100000\r\n\r\n");
        assert_eq!(
            f.next().unwrap().unwrap_err(),
            FrameError::TooLarge { limit: 200 }
        );
    }

    #[test]
    fn malformed_message_keeps_framing() {
        let bad = b"OPTIONS  sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nl: 2\r\n\r\nab".to_vec();
        let mut f = StreamFramer::new(4096);
        f.push(&bad);
        f.push(&msg(7, "z"));
        match f.next() {
            Some(Err(FrameError::Message(e, raw))) => {
                assert_eq!(e.status, 400);
                assert_eq!(raw, bad);
            }
            other => panic!("{other:?}"),
        }
        let m = f.next().unwrap().unwrap();
        assert_eq!(m.headers().cseq().unwrap().seq, 7);
    }
}
