//! Voicemail for plugboard: see `docs/voicemail.md` for the configuration
//! and the phone menus.
//!
//! The rules live in modules that never touch the host (settings, office
//! hours, greeting choice, PIN policy, mailbox quotas, subject templates,
//! the message store over [`store::Env`], the retrieval menu) and are
//! unit-tested natively; `flow` is the thin adapter to the SDK.

pub mod greeting;
pub mod hours;
pub mod menu;
pub mod pin;
pub mod quota;
pub mod settings;
pub mod store;
pub mod template;

mod flow;
