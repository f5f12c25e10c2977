//! Listeners: the host calls [`Listener::on_event`] once per event of the
//! tenant (call started, answered, ended; registration changed; plugin
//! fault or disabled; recording stored), in order per tenant, after the fact.
//!
//! ```no_run
//! use plugboard_sdk::prelude::*;
//!
//! struct Audit;
//! impl Listener for Audit {
//!     fn on_event(event: Event) -> Result<()> {
//!         if let EventKind::CallEnded(c) = &event.kind {
//!             log::info!("{} -> {}: {}", c.caller, c.callee, c.disposition);
//!         }
//!         Ok(())
//!     }
//! }
//! plugboard_sdk::export_listener!(Audit);
//! ```

use crate::__listener_bindings::exports::plugboard::pbx::events as raw;

pub use raw::{
    CallEnded, CallEvent, Event, EventKind, PluginDisabled, PluginFault, RecordingStored,
    RegistrationChanged,
};

impl EventKind {
    /// A short name: `call-started`, `call-answered`, `call-ended`,
    /// `registration-changed`, `plugin-fault`, `recording-stored`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::CallStarted(_) => "call-started",
            EventKind::CallAnswered(_) => "call-answered",
            EventKind::CallEnded(_) => "call-ended",
            EventKind::RegistrationChanged(_) => "registration-changed",
            EventKind::PluginFault(_) => "plugin-fault",
            EventKind::PluginDisabled(_) => "plugin-disabled",
            EventKind::RecordingStored(_) => "recording-stored",
        }
    }
}

/// A listener plugin (see the module docs). Register it with [`crate::export_listener!`].
pub trait Listener {
    /// Handle one event. An error is logged by the host; the event is not retried.
    fn on_event(event: Event) -> crate::Result<()>;
}

impl<T: Listener> raw::Guest for T {
    fn on_event(event: Event) -> core::result::Result<(), String> {
        T::on_event(event).map_err(|e| e.to_string())
    }
}

/// Export a [`Listener`] implementation as the component's `on-event`.
#[macro_export]
macro_rules! export_listener {
    ($ty:ident) => {
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__listener_bindings::__export_listener_raw!($ty with_types_in $crate::__listener_bindings);
        };
    };
}
