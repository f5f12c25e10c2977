//! Recordings this plugin made for this tenant (see [`crate::Call::record`]).

use crate::__bindings::plugboard::pbx::recordings as raw;
use crate::error::Result;

pub use raw::RecordingMeta;

/// One recording, if it exists.
pub fn get(id: &str) -> Result<Option<RecordingMeta>> {
    Ok(raw::get(id)?)
}

/// All recordings, oldest first.
pub fn list() -> Result<Vec<RecordingMeta>> {
    Ok(raw::list()?)
}

/// Remove a recording; true when it existed.
pub fn delete(id: &str) -> Result<bool> {
    Ok(raw::delete(id)?)
}
