//! Speech for plugboard.
//!
//! Two independent parts:
//!
//! - **Stock prompt sequences** ([`say_number`], [`say_datetime`],
//!   [`say_digits`]): pure functions that turn a number or an instant into
//!   the names of stock prompts (`numbers/40`, `days/2`, `words/oclock`, ...)
//!   that the host plays from `prompts/<lang>/<name>.wav`. The name space is
//!   documented in [`prompts`]; `scripts/make-prompts.sh` generates every
//!   name these functions can return ([`prompt_names`]).
//! - **Text-to-speech** ([`Tts`]): libespeak-ng loaded at run time with
//!   libloading, so the host runs (and reports [`TtsError::Unavailable`])
//!   on machines without it. One dedicated thread owns the non-re-entrant
//!   library; [`Tts::synthesize`] returns 8 kHz mono 16-bit samples,
//!   resampled from the library's 22,050 Hz with a polyphase windowed-sinc
//!   low-pass.
//!
//! See ADR 0012 (`docs/decisions/0012-voicemail-groundwork.md`).
#![deny(missing_docs)]

mod ffi;
pub mod prompts;
mod resample;
mod tts;

pub use prompts::{DateTimeStyle, prompt_names, say_datetime, say_digits, say_number};
pub use tts::{LIBRARY, MAX_TEXT_CHARS, QUEUE_DEPTH, SAMPLE_RATE, Tts, TtsError};
