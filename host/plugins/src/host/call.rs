//! `plugboard:pbx/call`: forwards to the call layer's [`crate::CallControl`].

use crate::bindings::plugboard::pbx::call::{
    CallInfo, CollectOptions, Collected, DialOptions, DialOutcome, Host, PlayOutcome, Prompt,
    RecordOptions, Recording,
};
use crate::bindings::plugboard::pbx::types::CallError;
use crate::state::PluginState;

impl Host for PluginState {
    async fn answer(&mut self) -> Result<(), CallError> {
        self.cpu.reset_stretch();
        Ok(self.control.answer().await?)
    }

    async fn hangup(&mut self) {
        self.cpu.reset_stretch();
        self.control.hangup().await
    }

    async fn play(
        &mut self,
        prompts: Vec<Prompt>,
        barge_in: bool,
    ) -> Result<PlayOutcome, CallError> {
        self.cpu.reset_stretch();
        let prompts = prompts.into_iter().map(Into::into).collect();
        Ok(self.control.play(prompts, barge_in).await?.into())
    }

    async fn collect_digits(&mut self, options: CollectOptions) -> Result<Collected, CallError> {
        self.cpu.reset_stretch();
        Ok(self.control.collect_digits(options.into()).await?.into())
    }

    async fn record(&mut self, options: RecordOptions) -> Result<Option<Recording>, CallError> {
        self.cpu.reset_stretch();
        Ok(self.control.record(options.into()).await?.map(Into::into))
    }

    async fn dial(
        &mut self,
        target: String,
        options: DialOptions,
    ) -> Result<DialOutcome, CallError> {
        self.cpu.reset_stretch();
        Ok(self.control.dial(target, options.timeout_ms).await?.into())
    }

    async fn transfer(&mut self, target: String) -> Result<(), CallError> {
        self.cpu.reset_stretch();
        Ok(self.control.transfer(target).await?)
    }

    async fn info(&mut self) -> CallInfo {
        self.cpu.reset_stretch();
        self.control.info().into()
    }
}
