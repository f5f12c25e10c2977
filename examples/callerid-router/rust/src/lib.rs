//! Caller-ID router: callers listed in config `known` (comma-separated
//! extensions) are transferred to `known_target`, everyone else to
//! `other_target`. An empty target ends the run without answering.
use plugboard_sdk::prelude::*;

struct Router;

impl CallFlow for Router {
    fn handle_call(call: Call) -> Result<()> {
        let caller = call.info().caller.user;
        let known = config::get_or("known", "")
            .split(',')
            .map(str::trim)
            .any(|k| !k.is_empty() && k == caller);
        let (kind, key) = if known {
            ("known", "known_target")
        } else {
            ("other", "other_target")
        };
        let target = config::get_or(key, "");
        if target.is_empty() {
            log::info!("callerid-router: {kind} caller {caller}, no {key} configured");
            return Ok(());
        }
        log::info!("callerid-router: {kind} caller {caller} -> {target}");
        call.transfer(&target)
    }
}

plugboard_sdk::export_call_flow!(Router);
