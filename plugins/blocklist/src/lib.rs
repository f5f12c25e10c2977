//! `blocklist`: a screener that refuses (or diverts) calls whose caller is
//! on the tenant's block list.
//!
//! Config: `blocked` — comma-separated caller users; an entry ending in `*`
//! is a prefix (`0900*`); `code`/`reason` — the refusal (default 603
//! Decline); `divert` — when set, blocked callers are sent to this number
//! instead (a "not welcome" announcement, a mailbox).
use plugboard_sdk::prelude::*;

struct BlockList;

/// Whether `caller` matches one entry of the comma-separated `list`.
fn blocked(list: &str, caller: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| match e.strip_suffix('*') {
            Some(prefix) => caller.starts_with(prefix),
            None => caller == e,
        })
}

impl Screener for BlockList {
    fn screen(req: ScreenRequest) -> Verdict {
        let list = config::get_or("blocked", "");
        if !blocked(&list, &req.caller) {
            return Verdict::Allow;
        }
        let divert = config::get_or("divert", "");
        if !divert.is_empty() {
            log::info!("blocklist: {} diverted to {divert}", req.caller);
            return Verdict::divert(&divert);
        }
        let code = config::get_or("code", "603").parse().unwrap_or(603);
        let reason = config::get_or("reason", "Decline");
        log::info!("blocklist: {} refused with {code}", req.caller);
        Verdict::reject(code, &reason)
    }
}

plugboard_sdk::export_screener!(BlockList);

#[cfg(test)]
mod tests {
    use super::blocked;

    #[test]
    fn exact_entries_and_prefixes_match() {
        assert!(blocked("104, 0900*", "104"));
        assert!(blocked("104, 0900*", "09001234"));
        assert!(!blocked("104, 0900*", "1040"));
        assert!(!blocked("", "104"));
    }
}
