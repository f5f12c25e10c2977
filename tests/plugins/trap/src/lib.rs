//! Test guest `trap`: panics immediately, which traps the instance.
use plugboard_sdk::prelude::*;

struct Trap;

impl CallFlow for Trap {
    fn handle_call(_call: Call) -> Result<()> {
        panic!("test-plugin-trap panics on purpose");
    }
}

plugboard_sdk::export_call_flow!(Trap);
