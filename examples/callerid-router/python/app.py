"""Caller-ID router: callers listed in config `known` (comma-separated
extensions) are transferred to `known_target`, everyone else to
`other_target`. An empty target ends the run without answering."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import call, config, log
from wit_world.imports.types import CallError_HungUp


class Handler(exports.Handler):
    def handle_call(self) -> None:
        caller = call.info().caller.user
        known = {k.strip() for k in (config.get("known") or "").split(",") if k.strip()}
        kind, key = ("known", "known_target") if caller in known else ("other", "other_target")
        target = config.get(key) or ""
        if not target:
            log.log(log.Level.INFO, f"callerid-router: {kind} caller {caller}, no {key} configured")
            return
        log.log(log.Level.INFO, f"callerid-router: {kind} caller {caller} -> {target}")
        try:
            call.transfer(target)
        except Err as e:
            if isinstance(e.value, CallError_HungUp):
                return  # the caller left: a normal end
            raise Err(f"transfer to {target}: {e.value}")
