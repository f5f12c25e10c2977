//! `plugboard:pbx/redirect` (0.1.2): how the call reached the plugin, from
//! the call layer ([`crate::CallControl::redirect`]).

use crate::bindings::plugboard::pbx::redirect::{Host, Redirection};
use crate::state::PluginState;

impl Host for PluginState {
    async fn info(&mut self) -> Option<Redirection> {
        self.cpu.reset_stretch();
        self.control.redirect().map(|r| Redirection {
            original: r.original,
            reason: r.reason,
            source: r.source,
        })
    }
}
