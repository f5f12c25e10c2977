//! # plugboard-sdk: write plugboard plugins in plain Rust
//!
//! Three kinds of plugin, one per crate, chosen by a cargo feature:
//! `call-flow` (default: [`CallFlow`], [`export_call_flow!`]), `screener`
//! (`screen::Screener`, `export_screener!`: allow, reject or divert each new
//! call before routing) and `listener` (`events::Listener`,
//! `export_listener!`: the tenant's events, with `http` for webhooks).
//! For the latter two: `plugboard-sdk = { default-features = false,
//! features = ["screener"] }`.
//!
//! A plugboard plugin is a WebAssembly component (target `wasm32-wasip2`) that
//! implements the `call-flow` world of the `plugboard:pbx@0.1.2` contract. The
//! host starts one fresh instance per call and calls its `handle-call` export;
//! every call-control function *blocks the plugin* until the host has done the
//! media or signalling work, so a call flow reads top to bottom:
//!
//! ```no_run
//! use plugboard_sdk::prelude::*;
//!
//! struct Attendant;
//!
//! impl CallFlow for Attendant {
//!     fn handle_call(call: Call) -> Result<()> {
//!         call.answer()?;
//!         call.play(&[Prompt::stock("welcome")], true)?;
//!         let input = call.collect_digits(
//!             CollectOptions::new(4).first_timeout_ms(5_000).terminators("#"),
//!         )?;
//!         match call.dial(&input.digits, DialOptions::timeout_ms(20_000))? {
//!             DialOutcome::Answered => {}
//!             _ => {
//!                 if let Some(rec) = call.record(RecordOptions::new().max_ms(60_000))? {
//!                     kv::set(&format!("vm/{}", rec.id), input.digits.as_bytes())?;
//!                 }
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! plugboard_sdk::export_call_flow!(Attendant);
//! ```
//!
//! What the SDK adds over raw `wit-bindgen` output:
//! - [`CallFlow`] + [`export_call_flow!`]: one trait, one macro; the raw
//!   `Guest` trait and bindings stay hidden.
//! - [`Call`]: a handle with methods instead of free functions.
//! - Builders with sensible defaults ([`CollectOptions`], [`RecordOptions`],
//!   [`DialOptions`]) and prompt constructors ([`Prompt::stock`], ...).
//! - One [`Error`] type: `?` works on call errors, storage errors and strings.
//!   A hang-up that reaches the end of `handle_call` as an error is *not* a
//!   plugin failure: the export wrapper reports it as a normal return.
//! - [`kv`], [`recordings`], [`config`] and [`log`] modules with small,
//!   documented functions.
//! - Since contract 0.1.2 (call flows): [`mail`], [`mwi`], [`clock`], [`speech`], [`directory`] and [`redirect`].
//!
//! The contract these bindings are generated from is the repository's
//! `wit/v0.1/pbx.wit`.

extern crate self as plugboard_sdk;

#[cfg(feature = "call-flow")]
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        // `call-flow` plus the 0.1.2 services (mail, mwi, clock, speech,
        // directory, redirect): a Rust component imports only what it uses.
        world: "unified-messaging",
        pub_export_macro: true,
        export_macro_name: "__export_raw",
        default_bindings_module: "::plugboard_sdk::__bindings",
        runtime_path: "::plugboard_sdk::__rt",
        additional_derives: [PartialEq, Eq],
    });
}

#[cfg(feature = "screener")]
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod __screener_bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "screener",
        pub_export_macro: true,
        export_macro_name: "__export_screener_raw",
        default_bindings_module: "::plugboard_sdk::__screener_bindings",
        runtime_path: "::plugboard_sdk::__rt",
        additional_derives: [PartialEq, Eq],
    });
}

#[cfg(feature = "listener")]
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod __listener_bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "listener",
        pub_export_macro: true,
        export_macro_name: "__export_listener_raw",
        default_bindings_module: "::plugboard_sdk::__listener_bindings",
        runtime_path: "::plugboard_sdk::__rt",
        additional_derives: [PartialEq, Eq],
    });
}

// The imports every world has (kv, config, log, types), from whichever
// world this build generates.
#[cfg(feature = "call-flow")]
#[doc(hidden)]
pub use __bindings as __common;
#[cfg(all(
    not(feature = "call-flow"),
    not(feature = "screener"),
    feature = "listener"
))]
#[doc(hidden)]
pub use __listener_bindings as __common;
#[cfg(all(not(feature = "call-flow"), feature = "screener"))]
#[doc(hidden)]
pub use __screener_bindings as __common;

#[cfg(not(any(feature = "call-flow", feature = "screener", feature = "listener")))]
compile_error!(
    "plugboard-sdk: enable one world feature: call-flow (default), screener or listener"
);

#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

#[cfg(feature = "call-flow")]
mod call;
#[cfg(feature = "call-flow")]
pub mod clock;
pub mod config;
#[cfg(feature = "call-flow")]
pub mod directory;
mod error;
#[cfg(feature = "listener")]
pub mod events;
#[cfg(feature = "listener")]
pub mod http;
pub mod kv;
pub mod log;
#[cfg(feature = "call-flow")]
pub mod mail;
#[cfg(feature = "call-flow")]
pub mod mwi;
#[cfg(feature = "call-flow")]
pub mod recordings;
#[cfg(feature = "call-flow")]
pub mod redirect;
#[cfg(feature = "screener")]
pub mod screen;
#[cfg(feature = "call-flow")]
pub mod speech;

#[cfg(feature = "call-flow")]
pub use call::{
    Call, CallInfo, CollectOptions, Collected, DialOptions, DialOutcome, Party, PlayOutcome,
    Prompt, RecordOptions, RecordStop, Recording,
};
pub use error::{CallError, Error, Result, StorageError};

/// Everything a plugin usually needs: `use plugboard_sdk::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "listener")]
    pub use crate::events::{Event, EventKind, Listener};
    #[cfg(feature = "listener")]
    pub use crate::http;
    #[cfg(feature = "screener")]
    pub use crate::screen::{ScreenRequest, Screener, Verdict};
    #[cfg(feature = "call-flow")]
    pub use crate::{
        Call, CallFlow, CallInfo, CollectOptions, Collected, DialOptions, DialOutcome, Party,
        PlayOutcome, Prompt, RecordOptions, RecordStop, Recording, recordings,
    };
    pub use crate::{CallError, Error, Result, StorageError, config, kv, log};
    #[cfg(feature = "call-flow")]
    pub use crate::{clock, directory, mail, mwi, redirect, speech};
}

/// A call-flow plugin: the host calls [`CallFlow::handle_call`] once per call,
/// in a fresh instance.
///
/// Return `Ok(())` when the flow is done (the host hangs up if the plugin did
/// not transfer or hang up itself). Return an error to make the host play its
/// fallback (a short error tone) and end the call. `Err(Error::Call(CallError::HungUp))`
/// is reported as a normal end: the caller simply left.
///
/// Register the implementing type with [`export_call_flow!`].
#[cfg(feature = "call-flow")]
pub trait CallFlow {
    /// Handle one call from start to end.
    fn handle_call(call: Call) -> Result<()>;
}

/// The result the raw `handle-call` export returns for a call flow's result.
///
/// Public for the export glue and for tests; plugins do not call it.
#[doc(hidden)]
pub fn __handler_result(result: Result<()>) -> core::result::Result<(), String> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_hung_up() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(feature = "call-flow")]
impl<T: CallFlow> __bindings::exports::plugboard::pbx::handler::Guest for T {
    fn handle_call() -> core::result::Result<(), String> {
        __handler_result(T::handle_call(Call::current()))
    }
}

/// Export a [`CallFlow`] implementation as the component's `handle-call`.
///
/// Use it once per plugin crate, at the crate root or in any module:
///
/// ```no_run
/// # use plugboard_sdk::prelude::*;
/// struct Hello;
/// impl CallFlow for Hello {
///     fn handle_call(call: Call) -> Result<()> {
///         call.play(&[Prompt::stock("hello")], false)?;
///         Ok(())
///     }
/// }
/// plugboard_sdk::export_call_flow!(Hello);
/// ```
#[cfg(feature = "call-flow")]
#[macro_export]
macro_rules! export_call_flow {
    ($ty:ident) => {
        #[allow(unsafe_code)]
        const _: () = {
    $crate::__bindings::__export_raw!($ty with_types_in $crate::__bindings);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_stays_ok() {
        assert_eq!(__handler_result(Ok(())), Ok(()));
    }

    #[test]
    fn hang_up_is_a_normal_end() {
        assert_eq!(__handler_result(Err(CallError::HungUp.into())), Ok(()));
    }

    #[test]
    fn other_errors_reach_the_host_as_text() {
        assert_eq!(
            __handler_result(Err(CallError::Denied("no dial-out".into()).into())),
            Err("call denied: no dial-out".to_string())
        );
        assert_eq!(
            __handler_result(Err("bad config".into())),
            Err("bad config".to_string())
        );
    }
}
