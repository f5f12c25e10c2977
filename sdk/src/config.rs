//! The plugin's configuration from the tenant's dial-plan entry (values are
//! rendered as text).

use crate::__common::plugboard::pbx::config as raw;

/// One value, if configured.
pub fn get(key: &str) -> Option<String> {
    raw::get(key)
}

/// One value, or `default` when it is not configured.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_string())
}

/// Every key and value.
pub fn entries() -> Vec<(String, String)> {
    raw::entries()
}
