//! Fresh identifiers for requests the host originates: Via branches, From/To
//! tags and Call-IDs (RFC 3261 8.1.1.4, 8.1.1.7, 19.3).
//!
//! All come from a thread-local CSPRNG. Branches and Call-IDs carry 96 bits
//! of randomness so that they are unique across space and time without
//! coordination; tags carry 64 bits (RFC 3261 asks for at least 32).

use std::fmt::Write;

/// The RFC 3261 magic cookie that starts every compliant branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// A new Via branch: `z9hG4bK` followed by 24 random hex digits.
pub fn new_branch() -> String {
    let r: [u8; 12] = rand::random();
    let mut s = String::with_capacity(MAGIC_COOKIE.len() + 24);
    s.push_str(MAGIC_COOKIE);
    push_hex(&mut s, &r);
    s
}

/// A new From/To tag: 16 random hex digits.
pub fn new_tag() -> String {
    let r: [u8; 8] = rand::random();
    let mut s = String::with_capacity(16);
    push_hex(&mut s, &r);
    s
}

/// A new Call-ID: 24 random hex digits, then `@host` when `host` is not empty.
pub fn new_call_id(host: &str) -> String {
    let r: [u8; 12] = rand::random();
    let mut s = String::with_capacity(25 + host.len());
    push_hex(&mut s, &r);
    if !host.is_empty() {
        s.push('@');
        s.push_str(host);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn branch_has_cookie_and_is_unique() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let b = new_branch();
            assert!(b.starts_with(MAGIC_COOKIE));
            assert_eq!(b.len(), 7 + 24);
            assert!(b[7..].bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(seen.insert(b));
        }
    }

    #[test]
    fn tag_is_token_and_unique() {
        let a = new_tag();
        let b = new_tag();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn call_id_has_host_when_given() {
        let c = new_call_id("pbx.example");
        assert!(c.ends_with("@pbx.example"));
        assert_eq!(c.len(), 24 + 1 + "pbx.example".len());
        let bare = new_call_id("");
        assert_eq!(bare.len(), 24);
        assert!(!bare.contains('@'));
        assert_ne!(new_call_id("h"), new_call_id("h"));
    }
}
