//! `plugboard:pbx/log`: plugin log lines go to `tracing` (target
//! `plugboard::plugin`) with the tenant, call id and plugin name, inside
//! whatever span the caller of [`crate::Plugin::run_call`] opened.

use crate::bindings::plugboard::pbx::log::{Host, Level};
use crate::state::PluginState;

/// Longest message kept; a plugin must not be able to flood the log.
pub(crate) const MAX_MESSAGE: usize = 4096;

/// `message` cut to at most [`MAX_MESSAGE`] bytes on a char boundary.
pub(crate) fn clip(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) {
        self.cpu.reset_stretch();
        let msg = clip(&message);
        let (tenant, call_id, plugin) = (&self.tenant, &self.call_id, &*self.plugin);
        match level {
            Level::Trace => {
                tracing::trace!(target: "plugboard::plugin", tenant, call_id, plugin, "{msg}")
            }
            Level::Debug => {
                tracing::debug!(target: "plugboard::plugin", tenant, call_id, plugin, "{msg}")
            }
            Level::Info => {
                tracing::info!(target: "plugboard::plugin", tenant, call_id, plugin, "{msg}")
            }
            Level::Warn => {
                tracing::warn!(target: "plugboard::plugin", tenant, call_id, plugin, "{msg}")
            }
            Level::Error => {
                tracing::error!(target: "plugboard::plugin", tenant, call_id, plugin, "{msg}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_messages_and_cuts_on_a_char_boundary() {
        assert_eq!(clip("hello"), "hello");
        let long = "é".repeat(MAX_MESSAGE); // 2 bytes each
        let c = clip(&long);
        assert!(c.len() <= MAX_MESSAGE);
        assert!(c.len() >= MAX_MESSAGE - 1);
        assert!(c.chars().all(|ch| ch == 'é'));
    }
}
