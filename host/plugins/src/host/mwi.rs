//! `plugboard:pbx/mwi` (0.1.2): forwards to [`crate::TenantServices`], which
//! sends the RFC 3842 NOTIFYs.

use crate::bindings::plugboard::pbx::mwi::{Counts, Host};
use crate::state::PluginState;
use crate::types::MwiCounts;

impl Host for PluginState {
    async fn set_counts(&mut self, account: String, counts: Counts) -> Result<(), String> {
        self.cpu.reset_stretch();
        let c = MwiCounts {
            new_messages: counts.new_messages,
            old_messages: counts.old_messages,
            new_urgent: counts.new_urgent,
            old_urgent: counts.old_urgent,
        };
        self.services.mwi_set(&account, c).await
    }

    async fn get_counts(&mut self, account: String) -> Counts {
        self.cpu.reset_stretch();
        let c = self.services.mwi_get(&account).await;
        Counts {
            new_messages: c.new_messages,
            old_messages: c.old_messages,
            new_urgent: c.new_urgent,
            old_urgent: c.old_urgent,
        }
    }
}
