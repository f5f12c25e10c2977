//! `plugboard:pbx/speech` (0.1.2): prompt sequences for numbers and dates,
//! and text-to-speech, from [`crate::TenantServices`].

use crate::bindings::plugboard::pbx::call::Prompt;
use crate::bindings::plugboard::pbx::speech::{DatetimeStyle, Host, TtsError};
use crate::state::PluginState;
use crate::types as t;

impl Host for PluginState {
    async fn say_number(&mut self, n: u32) -> Vec<Prompt> {
        self.cpu.reset_stretch();
        prompts(self.services.say_number(n))
    }

    async fn say_datetime(&mut self, unix_ms: u64, style: DatetimeStyle) -> Vec<Prompt> {
        self.cpu.reset_stretch();
        let style = match style {
            DatetimeStyle::Time => t::DateTimeStyle::Time,
            DatetimeStyle::WeekdayTime => t::DateTimeStyle::WeekdayTime,
            DatetimeStyle::DateTime => t::DateTimeStyle::DateTime,
        };
        prompts(self.services.say_datetime(unix_ms, style))
    }

    async fn synthesize(&mut self, text: String) -> Result<String, TtsError> {
        self.cpu.reset_stretch();
        self.services.synthesize(&text).await.map_err(|e| match e {
            t::TtsError::Unavailable(m) => TtsError::Unavailable(m),
            t::TtsError::Invalid(m) => TtsError::Invalid(m),
            t::TtsError::Failed(m) => TtsError::Failed(m),
        })
    }
}

fn prompts(list: Vec<t::Prompt>) -> Vec<Prompt> {
    list.into_iter().map(Into::into).collect()
}
