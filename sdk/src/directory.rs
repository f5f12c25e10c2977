//! The tenant's user directory (LDAP / Active Directory, needs the
//! operator's grant), with E.164 normalisation by the tenant's numbering plan.

use crate::__bindings::plugboard::pbx::directory as raw;

pub use raw::{DirectoryError, Entry};

/// The user with this number, in any form the tenant's numbering plan reads
/// (`+49 8142 4799 123`, `0049-81424799123`, `123`).
pub fn lookup_number(number: &str) -> Result<Option<Entry>, DirectoryError> {
    raw::lookup_number(number)
}

/// `number` in E.164, by the tenant's numbering plan.
pub fn normalize(number: &str) -> Result<String, DirectoryError> {
    raw::normalize(number)
}

impl From<DirectoryError> for crate::Error {
    fn from(e: DirectoryError) -> Self {
        let text = match e {
            DirectoryError::Unavailable(m) => format!("directory unavailable: {m}"),
            DirectoryError::Invalid(m) => format!("invalid number: {m}"),
            DirectoryError::Failed(m) => format!("directory failed: {m}"),
        };
        crate::Error::Other(text)
    }
}
