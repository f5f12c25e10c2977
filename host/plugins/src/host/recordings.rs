//! `plugboard:pbx/recordings`: forwards to [`crate::PluginStorage`].

use crate::bindings::plugboard::pbx::recordings::{Host, RecordingMeta};
use crate::bindings::plugboard::pbx::types::StorageError;
use crate::state::PluginState;

impl Host for PluginState {
    async fn get(&mut self, id: String) -> Result<Option<RecordingMeta>, StorageError> {
        self.cpu.reset_stretch();
        Ok(self.storage.recording_get(&id).await?.map(Into::into))
    }

    async fn list(&mut self) -> Result<Vec<RecordingMeta>, StorageError> {
        self.cpu.reset_stretch();
        Ok(self
            .storage
            .recording_list()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    async fn delete(&mut self, id: String) -> Result<bool, StorageError> {
        self.cpu.reset_stretch();
        Ok(self.storage.recording_delete(&id).await?)
    }
}
