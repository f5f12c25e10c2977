//! Test guest `echo-info`: answers, plays stock `beep`, reads config
//! `greeting` and the call info, stores kv `last-caller` = the caller's user,
//! plays the greeting as a stock prompt and hangs up. End-to-end tests use it
//! to check the whole plugin path.
use plugboard_sdk::prelude::*;

struct EchoInfo;

impl CallFlow for EchoInfo {
    fn handle_call(call: Call) -> Result<()> {
        call.answer()?;
        call.play(&[Prompt::stock("beep")], false)?;
        let greeting = config::get_or("greeting", "welcome");
        let info = call.info();
        log::info!(
            "echo-info: call {} from {} to {}",
            info.call_id,
            info.caller.user,
            info.callee.user
        );
        kv::set("last-caller", info.caller.user.as_bytes())?;
        call.play(&[Prompt::Stock(greeting)], false)?;
        call.hangup();
        Ok(())
    }
}

plugboard_sdk::export_call_flow!(EchoInfo);
