//! How the call reached this plugin: from the host's call rules, or from a
//! peer PBX's Diversion (RFC 5806) or History-Info (RFC 7044) header.

use crate::__bindings::plugboard::pbx::redirect as raw;

/// The first redirection of a call (the WIT `redirection`).
pub use raw::Redirection;

/// The first redirection of the call, if it was redirected.
pub fn info() -> Option<Redirection> {
    raw::info()
}

impl Redirection {
    /// True for `user-busy`.
    pub fn is_busy(&self) -> bool {
        self.reason == "user-busy"
    }

    /// True for `no-answer`.
    pub fn is_no_answer(&self) -> bool {
        self.reason == "no-answer"
    }
}
