//! Screeners: the host asks [`Screener::screen`] about every new call of the
//! tenant, after authentication and before routing, within a short time
//! budget (a screener that takes longer, or faults, lets the call through).
//!
//! ```no_run
//! use plugboard_sdk::prelude::*;
//!
//! struct NoAnonymous;
//! impl Screener for NoAnonymous {
//!     fn screen(req: ScreenRequest) -> Verdict {
//!         if req.caller == "anonymous" {
//!             Verdict::reject(603, "Decline")
//!         } else {
//!             Verdict::Allow
//!         }
//!     }
//! }
//! plugboard_sdk::export_screener!(NoAnonymous);
//! ```

use crate::__screener_bindings::exports::plugboard::pbx::screening as raw;

/// A refusal: SIP status (400-699) and reason.
pub use raw::Rejection;
/// What the screener sees of a new call.
pub use raw::ScreenRequest;
/// The screener's answer.
pub use raw::Verdict;

impl Verdict {
    /// Refuse the call with `code` (400-699) and `reason`.
    pub fn reject(code: u16, reason: &str) -> Verdict {
        Verdict::Reject(Rejection {
            code,
            reason: reason.to_string(),
        })
    }

    /// Route the call to `number` of the tenant instead.
    pub fn divert(number: &str) -> Verdict {
        Verdict::Divert(number.to_string())
    }
}

impl ScreenRequest {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A screener plugin (see the module docs). Register it with [`crate::export_screener!`].
pub trait Screener {
    /// Decide about one call.
    fn screen(request: ScreenRequest) -> Verdict;
}

impl<T: Screener> raw::Guest for T {
    fn screen(request: ScreenRequest) -> Verdict {
        T::screen(request)
    }
}

/// Export a [`Screener`] implementation as the component's `screen`.
#[macro_export]
macro_rules! export_screener {
    ($ty:ident) => {
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__screener_bindings::__export_screener_raw!($ty with_types_in $crate::__screener_bindings);
        };
    };
}
