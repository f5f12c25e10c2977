//! Test guest `swap` 2.0.0: declines every call without answering (the
//! host ends it with 480). See swap-v1.
use plugboard_sdk::prelude::*;

struct SwapV2;

impl CallFlow for SwapV2 {
    fn handle_call(call: Call) -> Result<()> {
        log::info!("swap 2.0.0 declines {}", call.info().call_id);
        Ok(())
    }
}

plugboard_sdk::export_call_flow!(SwapV2);
