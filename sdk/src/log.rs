//! Structured logging into the host's log; the host tags every line with the
//! tenant, call id and plugin.
//!
//! Functions take a message; the macros take `format!` arguments:
//!
//! ```no_run
//! use plugboard_sdk::log;
//! log::info("call started");
//! let digits = "42";
//! log::warn!("unknown extension {digits}");
//! ```

use crate::__common::plugboard::pbx::log as raw;

pub use raw::Level;

/// Log `message` at `level`.
pub fn log(level: Level, message: &str) {
    raw::log(level, message)
}

/// Log at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message)
}

/// Log at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Log at info level.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Log at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Log at error level.
pub fn error(message: &str) {
    log(Level::Error, message)
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace { ($($t:tt)*) => { $crate::log::trace(&::std::format!($($t)*)) } }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug { ($($t:tt)*) => { $crate::log::debug(&::std::format!($($t)*)) } }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info { ($($t:tt)*) => { $crate::log::info(&::std::format!($($t)*)) } }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn { ($($t:tt)*) => { $crate::log::warn(&::std::format!($($t)*)) } }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error { ($($t:tt)*) => { $crate::log::error(&::std::format!($($t)*)) } }

/// `log::debug!("fmt", args..)`: format and log at debug level.
pub use crate::__log_debug as debug;
/// `log::error!("fmt", args..)`: format and log at error level.
pub use crate::__log_error as error;
/// `log::info!("fmt", args..)`: format and log at info level.
pub use crate::__log_info as info;
/// `log::trace!("fmt", args..)`: format and log at trace level.
pub use crate::__log_trace as trace;
/// `log::warn!("fmt", args..)`: format and log at warn level.
pub use crate::__log_warn as warn;
