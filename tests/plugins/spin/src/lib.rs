//! Test guest `spin`: answers, then burns CPU forever. The host must stop it
//! with a CPU-limit fault.
use plugboard_sdk::prelude::*;

struct Spin;

impl CallFlow for Spin {
    fn handle_call(call: Call) -> Result<()> {
        call.answer()?;
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

plugboard_sdk::export_call_flow!(Spin);
