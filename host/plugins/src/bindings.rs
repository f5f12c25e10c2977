//! `bindgen!` output for `plugboard:pbx@0.1.2` (`call-flow`, `screener`,
//! `listener`), and conversions
//! between the generated types and the host mirrors in [`crate::types`].
//!
//! Every import is `async` (call control and storage wait on the network or
//! disk; config and log are async only for uniformity) and none is
//! `trappable`: domain failures travel as WIT error variants, and traps only
//! come from limits (CPU, memory) enforced by the store.
//!
//! The WIT is the repository's contract, `wit/v0.1/pbx.wit`.

#![allow(missing_docs)]

use crate::types as t;

wasmtime::component::bindgen!({
    path: "../../wit/v0.1",
    // `call-flow` plus the 0.1.2 services: the host links every interface,
    // a component imports what it uses (and its manifest requests).
    world: "unified-messaging",
    imports: { default: async },
    exports: { default: async },
});

/// The `screener` world: its imports are the call-flow world's modules.
pub(crate) mod screener_world {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "screener",
        imports: { default: async },
        exports: { default: async },
        with: {
            "plugboard:pbx/types": crate::bindings::plugboard::pbx::types,
            "plugboard:pbx/kv": crate::bindings::plugboard::pbx::kv,
            "plugboard:pbx/config": crate::bindings::plugboard::pbx::config,
            "plugboard:pbx/log": crate::bindings::plugboard::pbx::log,
        },
    });
}

/// The `listener` world: shares the common imports, adds `http`.
pub(crate) mod listener_world {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "listener",
        imports: { default: async },
        exports: { default: async },
        with: {
            "plugboard:pbx/types": crate::bindings::plugboard::pbx::types,
            "plugboard:pbx/kv": crate::bindings::plugboard::pbx::kv,
            "plugboard:pbx/config": crate::bindings::plugboard::pbx::config,
            "plugboard:pbx/log": crate::bindings::plugboard::pbx::log,
        },
    });
}

pub(crate) use listener_world::exports::plugboard::pbx::events as wlisten;
pub(crate) use listener_world::plugboard::pbx::http as whttp;
pub(crate) use screener_world::exports::plugboard::pbx::screening as wscreen;

pub(crate) use plugboard::pbx::call as wcall;
pub(crate) use plugboard::pbx::recordings as wrec;
pub(crate) use plugboard::pbx::types as wtypes;

impl From<wcall::Prompt> for t::Prompt {
    fn from(p: wcall::Prompt) -> Self {
        match p {
            wcall::Prompt::Stock(s) => t::Prompt::Stock(s),
            wcall::Prompt::Tenant(s) => t::Prompt::Tenant(s),
            wcall::Prompt::Recording(s) => t::Prompt::Recording(s),
            wcall::Prompt::Silence(ms) => t::Prompt::Silence(ms),
        }
    }
}

impl From<t::Prompt> for wcall::Prompt {
    fn from(p: t::Prompt) -> Self {
        match p {
            t::Prompt::Stock(s) => wcall::Prompt::Stock(s),
            t::Prompt::Tenant(s) => wcall::Prompt::Tenant(s),
            t::Prompt::Recording(s) => wcall::Prompt::Recording(s),
            t::Prompt::Silence(ms) => wcall::Prompt::Silence(ms),
        }
    }
}

impl From<t::PlayOutcome> for wcall::PlayOutcome {
    fn from(o: t::PlayOutcome) -> Self {
        match o {
            t::PlayOutcome::Completed => wcall::PlayOutcome::Completed,
            t::PlayOutcome::Interrupted => wcall::PlayOutcome::Interrupted,
        }
    }
}

impl From<wcall::CollectOptions> for t::CollectOptions {
    fn from(o: wcall::CollectOptions) -> Self {
        t::CollectOptions {
            max_digits: o.max_digits,
            first_digit_timeout_ms: o.first_digit_timeout_ms,
            inter_digit_timeout_ms: o.inter_digit_timeout_ms,
            terminators: o.terminators,
        }
    }
}

impl From<t::Collected> for wcall::Collected {
    fn from(c: t::Collected) -> Self {
        wcall::Collected {
            digits: c.digits,
            terminator: c.terminator,
            timed_out: c.timed_out,
        }
    }
}

impl From<wcall::RecordOptions> for t::RecordOptions {
    fn from(o: wcall::RecordOptions) -> Self {
        t::RecordOptions {
            min_length_ms: o.min_length_ms,
            max_length_ms: o.max_length_ms,
            silence_timeout_ms: o.silence_timeout_ms,
            stop_keys: o.stop_keys,
            beep: o.beep,
        }
    }
}

impl From<t::RecordStop> for wcall::RecordStop {
    fn from(s: t::RecordStop) -> Self {
        match s {
            t::RecordStop::MaxLength => wcall::RecordStop::MaxLength,
            t::RecordStop::Silence => wcall::RecordStop::Silence,
            t::RecordStop::Key => wcall::RecordStop::Key,
            t::RecordStop::Hangup => wcall::RecordStop::Hangup,
        }
    }
}

impl From<t::RecordingInfo> for wcall::Recording {
    fn from(r: t::RecordingInfo) -> Self {
        wcall::Recording {
            id: r.id,
            duration_ms: r.duration_ms,
            stopped_by: r.stopped_by.into(),
            key: r.key,
        }
    }
}

impl From<t::DialOutcome> for wcall::DialOutcome {
    fn from(o: t::DialOutcome) -> Self {
        match o {
            t::DialOutcome::Answered => wcall::DialOutcome::Answered,
            t::DialOutcome::Busy => wcall::DialOutcome::Busy,
            t::DialOutcome::NoAnswer => wcall::DialOutcome::NoAnswer,
            t::DialOutcome::Failed => wcall::DialOutcome::Failed,
        }
    }
}

impl From<t::Party> for wcall::Party {
    fn from(p: t::Party) -> Self {
        wcall::Party {
            user: p.user,
            display_name: p.display_name,
            uri: p.uri,
        }
    }
}

impl From<t::CallInfo> for wcall::CallInfo {
    fn from(i: t::CallInfo) -> Self {
        wcall::CallInfo {
            call_id: i.call_id,
            caller: i.caller.into(),
            callee: i.callee.into(),
            tenant: i.tenant,
            redirect_reason: i.redirect_reason,
            headers: i.headers,
        }
    }
}

impl From<t::CallError> for wtypes::CallError {
    fn from(e: t::CallError) -> Self {
        match e {
            t::CallError::HungUp => wtypes::CallError::HungUp,
            t::CallError::Invalid(m) => wtypes::CallError::Invalid(m),
            t::CallError::NotFound(m) => wtypes::CallError::NotFound(m),
            t::CallError::Denied(m) => wtypes::CallError::Denied(m),
            t::CallError::Failed(m) => wtypes::CallError::Failed(m),
        }
    }
}

impl From<t::StorageError> for wtypes::StorageError {
    fn from(e: t::StorageError) -> Self {
        match e {
            t::StorageError::InvalidKey(m) => wtypes::StorageError::InvalidKey(m),
            t::StorageError::QuotaExceeded => wtypes::StorageError::QuotaExceeded,
            t::StorageError::Backend(m) => wtypes::StorageError::Backend(m),
        }
    }
}

impl From<t::RecordingMeta> for wrec::RecordingMeta {
    fn from(m: t::RecordingMeta) -> Self {
        wrec::RecordingMeta {
            id: m.id,
            duration_ms: m.duration_ms,
            created_ms: m.created_ms,
            size_bytes: m.size_bytes,
        }
    }
}

impl From<t::ScreenRequest> for wscreen::ScreenRequest {
    fn from(r: t::ScreenRequest) -> Self {
        wscreen::ScreenRequest {
            call_id: r.call_id,
            tenant: r.tenant,
            caller: r.caller,
            caller_name: r.caller_name,
            callee: r.callee,
            source: r.source,
            headers: r.headers,
        }
    }
}

impl From<wscreen::Verdict> for t::Verdict {
    fn from(v: wscreen::Verdict) -> Self {
        match v {
            wscreen::Verdict::Allow => t::Verdict::Allow,
            wscreen::Verdict::Reject(r) => t::Verdict::Reject {
                code: r.code,
                reason: r.reason,
            },
            wscreen::Verdict::Divert(n) => t::Verdict::Divert(n),
        }
    }
}

impl From<t::Event> for wlisten::Event {
    fn from(e: t::Event) -> Self {
        use t::EventKind as K;
        use wlisten::EventKind as W;
        let kind = match e.kind {
            K::CallStarted(c) => W::CallStarted(c.into()),
            K::CallAnswered(c) => W::CallAnswered(c.into()),
            K::CallEnded {
                call,
                disposition,
                duration_ms,
            } => W::CallEnded(wlisten::CallEnded {
                call_id: call.call_id,
                caller: call.caller,
                callee: call.callee,
                disposition,
                duration_ms,
            }),
            K::RegistrationChanged { user, contacts } => {
                W::RegistrationChanged(wlisten::RegistrationChanged { user, contacts })
            }
            K::PluginFault {
                plugin,
                version,
                kind,
                message,
            } => W::PluginFault(wlisten::PluginFault {
                plugin,
                version,
                kind,
                message,
            }),
            K::PluginDisabled { plugin, backoff_s } => {
                W::PluginDisabled(wlisten::PluginDisabled { plugin, backoff_s })
            }
            K::RecordingStored {
                plugin,
                id,
                duration_ms,
            } => W::RecordingStored(wlisten::RecordingStored {
                plugin,
                id,
                duration_ms,
            }),
        };
        wlisten::Event {
            tenant: e.tenant,
            time_ms: e.time_ms,
            kind,
        }
    }
}

impl From<t::CallEvent> for wlisten::CallEvent {
    fn from(c: t::CallEvent) -> Self {
        wlisten::CallEvent {
            call_id: c.call_id,
            caller: c.caller,
            callee: c.callee,
            plugin: c.plugin,
        }
    }
}

impl From<whttp::Request> for t::HttpRequest {
    fn from(r: whttp::Request) -> Self {
        t::HttpRequest {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
            timeout_ms: r.timeout_ms,
        }
    }
}

impl From<t::HttpResponse> for whttp::Response {
    fn from(r: t::HttpResponse) -> Self {
        whttp::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<t::HttpError> for whttp::HttpError {
    fn from(e: t::HttpError) -> Self {
        match e {
            t::HttpError::Denied(m) => whttp::HttpError::Denied(m),
            t::HttpError::Invalid(m) => whttp::HttpError::Invalid(m),
            t::HttpError::Failed(m) => whttp::HttpError::Failed(m),
            t::HttpError::Timeout => whttp::HttpError::Timeout,
        }
    }
}
