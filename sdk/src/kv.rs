//! A key-value store scoped to (tenant, plugin): durable, shared by every
//! call this plugin handles for the tenant.

use crate::__common::plugboard::pbx::kv as raw;
use crate::error::Result;

/// The value of `key`, if set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
    Ok(raw::get(key)?)
}

/// The value of `key` as UTF-8 text (invalid bytes are replaced), if set.
pub fn get_string(key: &str) -> Result<Option<String>> {
    Ok(get(key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Set `key` to `value`; durable when this returns.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<()> {
    Ok(raw::set(key, value.as_ref())?)
}

/// Remove `key`; true when it existed.
pub fn delete(key: &str) -> Result<bool> {
    Ok(raw::delete(key)?)
}

/// The keys that start with `prefix`, in order.
pub fn list_keys(prefix: &str) -> Result<Vec<String>> {
    Ok(raw::list_keys(prefix)?)
}
