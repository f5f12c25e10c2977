//! plugboard licences: signed licence files, licensing states, capacities
//! and plugin entitlements.
//!
//! The core runs without any licence at full capacity. A site licence
//! (signed by the licensor, an *issuer* key) sets capacities for a site and
//! carries entitlements for licensed plugins; a vendor licence (signed by a
//! vendor's plugin key) only carries entitlements for that vendor's plugins.
//! Everything is verified offline and evaluated against an injectable
//! [`Clock`]; see `docs/decisions/0011-licences.md`.

#![warn(missing_docs)]

pub mod clock;
pub mod file;
pub mod log;
pub mod state;

pub use clock::{Clock, FileClock, ManualClock, SharedClock, SystemClock};
pub use file::{Capacity, Entitlement, Invalid, LicenceError, LicenceFile, Scope, parse, sign};
pub use log::{FileGraceLog, GraceLog, MemoryLog, ReminderLog};
pub use state::{
    Item, LicenceSummary, Licensing, Refusal, Reminder, Setup, State, Status, Transition,
    VendorKeys,
};
