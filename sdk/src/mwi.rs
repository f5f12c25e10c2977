//! Message-waiting indication (needs the operator's grant). The host keeps
//! the counts per (tenant, account) and sends a `message-summary` NOTIFY
//! (RFC 3842) on every change to subscribers, to the account's registered
//! contacts and, for a number served for a peer PBX, to the trunk peer.

use crate::__bindings::plugboard::pbx::mwi as raw;
use crate::error::Result;

/// Message counts of one mailbox (the WIT `counts`).
pub use raw::Counts;

impl Counts {
    /// `new` and `old` messages, none urgent.
    pub fn new(new: u32, old: u32) -> Counts {
        Counts {
            new_messages: new,
            old_messages: old,
            new_urgent: 0,
            old_urgent: 0,
        }
    }

    /// True when a new message is waiting (the lamp is on).
    pub fn waiting(&self) -> bool {
        self.new_messages > 0
    }
}

impl Default for Counts {
    fn default() -> Self {
        Counts::new(0, 0)
    }
}

/// Set the counts of `account` (an extension of the tenant, or a number this
/// tenant serves for a peer PBX). Unchanged counts send nothing.
pub fn set_counts(account: &str, counts: Counts) -> Result<()> {
    raw::set_counts(account, counts).map_err(|m| crate::Error::Other(format!("mwi: {m}")))
}

/// The counts last set for `account` (all zero if never set).
pub fn get_counts(account: &str) -> Counts {
    raw::get_counts(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors() {
        let c = Counts::new(2, 3);
        assert_eq!((c.new_messages, c.old_messages, c.new_urgent), (2, 3, 0));
        assert!(c.waiting());
        assert!(!Counts::default().waiting());
    }
}
