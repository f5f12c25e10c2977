//! Speech: numbers, dates and times as stock prompt sequences in the call's
//! language, and text-to-speech (always granted).

use crate::__bindings::plugboard::pbx::speech as raw;
use crate::call::Prompt;

pub use raw::{DatetimeStyle, TtsError};

/// A number (0 to 999,999,999) as stock prompts; larger numbers are clamped.
pub fn say_number(n: u32) -> Vec<Prompt> {
    raw::say_number(n.min(999_999_999))
}

/// An instant (Unix milliseconds) as stock prompts, in the tenant's time zone.
pub fn say_datetime(unix_ms: u64, style: DatetimeStyle) -> Vec<Prompt> {
    raw::say_datetime(unix_ms, style)
}

/// Synthesise `text` in the call's language. The audio is stored as a
/// recording of this plugin (counted in its quota): play it with
/// [`Prompt::recording`] and delete it with [`crate::recordings::delete`]
/// when done. [`TtsError::Unavailable`] means no engine: fall back to prompts.
pub fn synthesize(text: &str) -> Result<String, TtsError> {
    raw::synthesize(text)
}

impl From<TtsError> for crate::Error {
    fn from(e: TtsError) -> Self {
        let text = match e {
            TtsError::Unavailable(m) => format!("text-to-speech unavailable: {m}"),
            TtsError::Invalid(m) => format!("invalid text for speech: {m}"),
            TtsError::Failed(m) => format!("text-to-speech failed: {m}"),
        };
        crate::Error::Other(text)
    }
}
