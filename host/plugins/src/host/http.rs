//! `plugboard:pbx/http`: forwards to the [`crate::HttpClient`] of the run,
//! which applies the tenant's allow-list; without one every request is denied.

use crate::bindings::whttp::{Host, HttpError, Request, Response};
use crate::state::PluginState;

impl Host for PluginState {
    async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        self.cpu.reset_stretch();
        let Some(client) = self.http.clone() else {
            return Err(HttpError::Denied(
                "outbound HTTP is not granted to this plugin".into(),
            ));
        };
        client
            .send(request.into())
            .await
            .map(Into::into)
            .map_err(Into::into)
    }
}
