//! `plugboard:pbx/config`: the plugin's settings from the dial-plan entry,
//! given to [`crate::CallRun::config`].

use crate::bindings::plugboard::pbx::config::Host;
use crate::state::PluginState;

/// The value of `key`; the first entry wins if a key repeats.
pub(crate) fn lookup(config: &[(String, String)], key: &str) -> Option<String> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.cpu.reset_stretch();
        lookup(&self.config, &key)
    }

    async fn entries(&mut self) -> Vec<(String, String)> {
        self.cpu.reset_stretch();
        self.config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_first_match_only() {
        let c = vec![
            ("a".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
        ];
        assert_eq!(lookup(&c, "a").as_deref(), Some("1"));
        assert_eq!(lookup(&c, "b"), None);
    }
}
