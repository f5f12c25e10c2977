//! `plugboard:pbx/directory` (0.1.2): the tenant's LDAP/AD directory and
//! numbering plan, from [`crate::TenantServices`].

use crate::bindings::plugboard::pbx::directory::{DirectoryError, Entry, Host};
use crate::state::PluginState;
use crate::types as t;

impl Host for PluginState {
    async fn lookup_number(&mut self, number: String) -> Result<Option<Entry>, DirectoryError> {
        self.cpu.reset_stretch();
        let found = self
            .services
            .directory_lookup(&number)
            .await
            .map_err(error)?;
        Ok(found.map(|e| Entry {
            id: e.id,
            number: e.number,
            extension: e.extension,
            display_name: e.display_name,
            mail: e.mail,
            pin_hash: e.pin_hash,
        }))
    }

    async fn normalize(&mut self, number: String) -> Result<String, DirectoryError> {
        self.cpu.reset_stretch();
        self.services.normalize(&number).map_err(error)
    }
}

fn error(e: t::DirectoryError) -> DirectoryError {
    match e {
        t::DirectoryError::Unavailable(m) => DirectoryError::Unavailable(m),
        t::DirectoryError::Invalid(m) => DirectoryError::Invalid(m),
        t::DirectoryError::Failed(m) => DirectoryError::Failed(m),
    }
}
