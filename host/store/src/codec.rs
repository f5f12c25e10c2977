//! Compact binary encoding of binding sets and recording metadata.
//!
//! Hand-written (no serde format crate needed) and versioned by a leading byte.
//! Decoding never panics: truncated or corrupt bytes give a
//! [`StoreError::Backend`] error.

use crate::{Binding, StoreError};

const BINDINGS_V1: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings longer than u32::MAX cannot come from a SIP message; truncating the
    // length prefix would corrupt the record, so saturate and let the writer refuse.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encodes a binding set.
pub(crate) fn encode_bindings(bindings: &[Binding]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(16 + bindings.len() * 128);
    out.push(BINDINGS_V1);
    let count = u32::try_from(bindings.len()).map_err(|_| StoreError::QuotaExceeded)?;
    out.extend_from_slice(&count.to_le_bytes());
    for b in bindings {
        for s in [&b.contact, &b.source, &b.call_id] {
            if u32::try_from(s.len()).is_err() {
                return Err(StoreError::QuotaExceeded);
            }
        }
        put_str(&mut out, &b.contact);
        out.extend_from_slice(&b.expires_at_unix.to_le_bytes());
        put_str(&mut out, &b.source);
        put_str(&mut out, &b.call_id);
        out.extend_from_slice(&b.cseq.to_le_bytes());
        match b.q {
            Some(q) => {
                out.push(1);
                out.extend_from_slice(&q.to_le_bytes());
            }
            None => out.push(0),
        }
        match &b.user_agent {
            Some(ua) => {
                out.push(1);
                put_str(&mut out, ua);
            }
            None => out.push(0),
        }
    }
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
}

fn corrupt() -> StoreError {
    StoreError::Backend("corrupt binding record".to_string())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn string(&mut self) -> Result<String, StoreError> {
        let len = usize::try_from(self.u32()?).map_err(|_| corrupt())?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt())
    }
}

/// Decodes a binding set written by [`encode_bindings`].
pub(crate) fn decode_bindings(buf: &[u8]) -> Result<Vec<Binding>, StoreError> {
    let mut r = Reader { buf };
    if r.u8()? != BINDINGS_V1 {
        return Err(corrupt());
    }
    let count = r.u32()?;
    // Each binding takes at least 30 bytes: never pre-allocate from an untrusted count.
    let mut out = Vec::with_capacity((count as usize).min(buf.len() / 30));
    for _ in 0..count {
        let contact = r.string()?;
        let expires_at_unix = r.u64()?;
        let source = r.string()?;
        let call_id = r.string()?;
        let cseq = r.u32()?;
        let q = match r.u8()? {
            0 => None,
            1 => Some(f32::from_le_bytes(r.array()?)),
            _ => return Err(corrupt()),
        };
        let user_agent = match r.u8()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return Err(corrupt()),
        };
        out.push(Binding {
            contact,
            expires_at_unix,
            source,
            call_id,
            cseq,
            q,
            user_agent,
        });
    }
    if !r.buf.is_empty() {
        return Err(corrupt());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Binding> {
        vec![
            Binding {
                contact: "<sip:101@192.0.2.7:5062>;+sip.instance=\"x\"".into(),
                expires_at_unix: 1_800_000_000,
                source: "udp:192.0.2.7:5062".into(),
                call_id: "abc@host".into(),
                cseq: 42,
                q: Some(0.5),
                user_agent: Some("baresip 1.0".into()),
            },
            Binding {
                contact: "sip:101@[2001:db8::1]".into(),
                expires_at_unix: 0,
                source: "tcp:[2001:db8::1]:5060".into(),
                call_id: String::new(),
                cseq: u32::MAX,
                q: None,
                user_agent: None,
            },
        ]
    }

    #[test]
    fn bindings_round_trip() {
        let b = sample();
        assert_eq!(decode_bindings(&encode_bindings(&b).unwrap()).unwrap(), b);
        assert_eq!(
            decode_bindings(&encode_bindings(&[]).unwrap()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn every_truncation_and_trailing_garbage_is_an_error_not_a_panic() {
        let bytes = encode_bindings(&sample()).unwrap();
        for n in 0..bytes.len() {
            assert!(decode_bindings(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_bindings(&longer).is_err());
        // A huge claimed count must not allocate or panic.
        assert!(decode_bindings(&[1, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_bindings(&[9]).is_err());
    }
}
