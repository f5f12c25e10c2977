//! Test guest `hog`: answers, then allocates (and touches) 1 MiB chunks until
//! the host's memory cap stops it.
use plugboard_sdk::prelude::*;

struct Hog;

impl CallFlow for Hog {
    fn handle_call(call: Call) -> Result<()> {
        call.answer()?;
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            chunks.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

plugboard_sdk::export_call_flow!(Hog);
