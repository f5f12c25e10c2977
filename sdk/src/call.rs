//! Call control: the [`Call`] handle and the option builders.
//!
//! The WIT types are re-exported as they are (they carry the contract's docs);
//! this module adds constructors and builder methods with sensible defaults.

use crate::__bindings::plugboard::pbx::call as raw;
use crate::error::Result;

pub use raw::{
    CallInfo, CollectOptions, Collected, DialOptions, DialOutcome, Party, PlayOutcome, Prompt,
    RecordOptions, RecordStop, Recording,
};

/// The call this plugin instance was started for.
///
/// Every method blocks the plugin until the host has done the work. After the
/// caller hangs up, call-control methods return [`CallError::HungUp`]
/// (wrapped in [`crate::Error`]); returning that error from
/// [`crate::CallFlow::handle_call`] counts as a normal end.
///
/// [`CallError::HungUp`]: crate::CallError::HungUp
#[derive(Debug)]
pub struct Call {
    _private: (),
}

impl Call {
    /// The handle for the current call (one instance handles one call).
    pub(crate) fn current() -> Call {
        Call { _private: () }
    }

    /// Answer the call (200 OK). Idempotent.
    pub fn answer(&self) -> Result<()> {
        Ok(raw::answer()?)
    }

    /// End the call. Further call-control methods return `HungUp`.
    pub fn hangup(&self) {
        raw::hangup()
    }

    /// Play prompts in order; with `barge_in`, a DTMF key stops playback and
    /// stays buffered for the next [`Call::collect_digits`]. Answers first if
    /// the call is not answered yet.
    pub fn play(&self, prompts: &[Prompt], barge_in: bool) -> Result<PlayOutcome> {
        Ok(raw::play(prompts, barge_in)?)
    }

    /// Play one prompt without barge-in.
    pub fn say(&self, prompt: Prompt) -> Result<()> {
        raw::play(&[prompt], false)?;
        Ok(())
    }

    /// Collect DTMF digits, starting with any digit already buffered.
    pub fn collect_digits(&self, options: CollectOptions) -> Result<Collected> {
        Ok(raw::collect_digits(&options)?)
    }

    /// Record the caller. `None` when the recording was shorter than the
    /// minimum length (nothing stored).
    pub fn record(&self, options: RecordOptions) -> Result<Option<Recording>> {
        Ok(raw::record(&options)?)
    }

    /// Call a user of this tenant by extension and bridge the caller to them.
    /// Returns when the bridge ends or the attempt fails.
    pub fn dial(&self, target: &str, options: DialOptions) -> Result<DialOutcome> {
        Ok(raw::dial(target, options)?)
    }

    /// Hand the call to another number of the tenant's dial plan; the flow
    /// should return after this succeeds.
    pub fn transfer(&self, target: &str) -> Result<()> {
        Ok(raw::transfer(target)?)
    }

    /// Facts about the call: caller, callee, tenant, selected headers.
    pub fn info(&self) -> CallInfo {
        raw::info()
    }
}

impl Prompt {
    /// A stock prompt by name (`welcome`, `digits/4`).
    pub fn stock(name: impl Into<String>) -> Prompt {
        Prompt::Stock(name.into())
    }

    /// A tenant-uploaded prompt by name (falls back to the stock prompt).
    pub fn tenant(name: impl Into<String>) -> Prompt {
        Prompt::Tenant(name.into())
    }

    /// A recording of this plugin, by id.
    pub fn recording(id: impl Into<String>) -> Prompt {
        Prompt::Recording(id.into())
    }

    /// Silence of `ms` milliseconds.
    pub fn silence(ms: u32) -> Prompt {
        Prompt::Silence(ms)
    }

    /// One stock prompt per digit (`digits/0` ... `digits/9`, `digits/star`,
    /// `digits/hash`), for reading a number back; other characters are skipped.
    pub fn digits(number: &str) -> Vec<Prompt> {
        number
            .chars()
            .filter_map(|c| match c {
                '0'..='9' => Some(Prompt::Stock(format!("digits/{c}"))),
                '*' => Some(Prompt::stock("digits/star")),
                '#' => Some(Prompt::stock("digits/hash")),
                _ => None,
            })
            .collect()
    }
}

impl CollectOptions {
    /// Collect up to `max_digits` digits; 5 s for the first digit, 3 s between
    /// digits, no terminators.
    pub fn new(max_digits: u32) -> CollectOptions {
        CollectOptions {
            max_digits,
            first_digit_timeout_ms: 5_000,
            inter_digit_timeout_ms: 3_000,
            terminators: String::new(),
        }
    }

    /// Give up if no first digit arrives within `ms`.
    pub fn first_timeout_ms(mut self, ms: u32) -> CollectOptions {
        self.first_digit_timeout_ms = ms;
        self
    }

    /// Give up if no further digit arrives within `ms` after a digit.
    pub fn inter_timeout_ms(mut self, ms: u32) -> CollectOptions {
        self.inter_digit_timeout_ms = ms;
        self
    }

    /// Keys that end the input (for example `"#"`).
    pub fn terminators(mut self, keys: &str) -> CollectOptions {
        self.terminators = keys.to_string();
        self
    }
}

impl Default for CollectOptions {
    /// One digit, default timeouts (a menu choice).
    fn default() -> Self {
        CollectOptions::new(1)
    }
}

impl RecordOptions {
    /// Defaults: at least 1 s, at most 2 min, stop after 5 s of silence,
    /// stop on `#`, beep first.
    pub fn new() -> RecordOptions {
        RecordOptions {
            min_length_ms: 1_000,
            max_length_ms: 120_000,
            silence_timeout_ms: 5_000,
            stop_keys: "#".to_string(),
            beep: true,
        }
    }

    /// Discard recordings shorter than `ms`.
    pub fn min_ms(mut self, ms: u32) -> RecordOptions {
        self.min_length_ms = ms;
        self
    }

    /// Stop at `ms`.
    pub fn max_ms(mut self, ms: u32) -> RecordOptions {
        self.max_length_ms = ms;
        self
    }

    /// Stop after `ms` of silence (0 = never).
    pub fn silence_ms(mut self, ms: u32) -> RecordOptions {
        self.silence_timeout_ms = ms;
        self
    }

    /// DTMF keys that stop the recording.
    pub fn stop_keys(mut self, keys: &str) -> RecordOptions {
        self.stop_keys = keys.to_string();
        self
    }

    /// Play a beep before recording (default true).
    pub fn beep(mut self, beep: bool) -> RecordOptions {
        self.beep = beep;
        self
    }
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions::new()
    }
}

impl DialOptions {
    /// Ring for at most `ms` milliseconds.
    pub fn timeout_ms(ms: u32) -> DialOptions {
        DialOptions { timeout_ms: ms }
    }
}

impl Default for DialOptions {
    /// Ring for 30 s.
    fn default() -> Self {
        DialOptions::timeout_ms(30_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_builder_sets_each_field() {
        let o = CollectOptions::new(4)
            .first_timeout_ms(7)
            .inter_timeout_ms(9)
            .terminators("#*");
        assert_eq!(
            o,
            CollectOptions {
                max_digits: 4,
                first_digit_timeout_ms: 7,
                inter_digit_timeout_ms: 9,
                terminators: "#*".into()
            }
        );
        assert_eq!(CollectOptions::default().max_digits, 1);
    }

    #[test]
    fn record_builder_overrides_defaults() {
        let o = RecordOptions::new()
            .max_ms(60_000)
            .min_ms(0)
            .silence_ms(0)
            .stop_keys("")
            .beep(false);
        assert_eq!(o.max_length_ms, 60_000);
        assert_eq!(o.min_length_ms, 0);
        assert_eq!(o.silence_timeout_ms, 0);
        assert_eq!(o.stop_keys, "");
        assert!(!o.beep);
        assert!(RecordOptions::default().beep);
    }

    #[test]
    fn digits_reads_a_number_back() {
        assert_eq!(
            Prompt::digits("1*#x2"),
            vec![
                Prompt::stock("digits/1"),
                Prompt::stock("digits/star"),
                Prompt::stock("digits/hash"),
                Prompt::stock("digits/2"),
            ]
        );
    }

    #[test]
    fn prompt_constructors_pick_the_variant() {
        assert_eq!(Prompt::tenant("a"), Prompt::Tenant("a".into()));
        assert_eq!(Prompt::recording("r1"), Prompt::Recording("r1".into()));
        assert_eq!(Prompt::silence(250), Prompt::Silence(250));
        assert_eq!(DialOptions::timeout_ms(5).timeout_ms, 5);
        assert_eq!(DialOptions::default().timeout_ms, 30_000);
    }
}
