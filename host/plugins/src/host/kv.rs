//! `plugboard:pbx/kv`: forwards to [`crate::PluginStorage`], already scoped to
//! (tenant, plugin) by whoever built the [`crate::CallRun`].

use crate::bindings::plugboard::pbx::kv::Host;
use crate::bindings::plugboard::pbx::types::StorageError;
use crate::state::PluginState;

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, StorageError> {
        self.cpu.reset_stretch();
        Ok(self.storage.kv_get(&key).await?)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), StorageError> {
        self.cpu.reset_stretch();
        Ok(self.storage.kv_set(&key, value).await?)
    }

    async fn delete(&mut self, key: String) -> Result<bool, StorageError> {
        self.cpu.reset_stretch();
        Ok(self.storage.kv_delete(&key).await?)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, StorageError> {
        self.cpu.reset_stretch();
        Ok(self.storage.kv_list(&prefix).await?)
    }
}
