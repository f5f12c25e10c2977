//! Test guest `swap` 1.0.0: answers, keeps the call 500 ms, hangs up (the
//! caller sees 200 OK then BYE). The hot-swap test tells versions apart by
//! this behaviour; 2.0.0 declines instead.
use plugboard_sdk::prelude::*;

struct SwapV1;

impl CallFlow for SwapV1 {
    fn handle_call(call: Call) -> Result<()> {
        call.answer()?;
        call.play(&[Prompt::silence(500)], false)?;
        call.hangup();
        Ok(())
    }
}

plugboard_sdk::export_call_flow!(SwapV1);
