//! `webhook`: a listener that posts each event of the tenant as JSON to the
//! configured URL (the host must allow-list its host for this tenant).
//!
//! Config: `url` — where to POST; `events` — comma-separated event names to
//! send (`call-started, call-ended, ...`; empty = all).
use plugboard_sdk::events::EventKind as K;
use plugboard_sdk::prelude::*;

struct Webhook;

/// JSON string literal.
fn s(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt(v: &Option<String>) -> String {
    v.as_deref().map_or("null".to_string(), s)
}

/// The event as one JSON object.
fn to_json(e: &Event) -> String {
    let body = match &e.kind {
        K::CallStarted(c) | K::CallAnswered(c) => format!(
            "\"call_id\":{},\"caller\":{},\"callee\":{},\"plugin\":{}",
            s(&c.call_id),
            s(&c.caller),
            s(&c.callee),
            opt(&c.plugin)
        ),
        K::CallEnded(c) => format!(
            "\"call_id\":{},\"caller\":{},\"callee\":{},\"disposition\":{},\"duration_ms\":{}",
            s(&c.call_id),
            s(&c.caller),
            s(&c.callee),
            s(&c.disposition),
            c.duration_ms
        ),
        K::RegistrationChanged(r) => {
            format!("\"user\":{},\"contacts\":{}", s(&r.user), r.contacts)
        }
        K::PluginFault(f) => format!(
            "\"plugin\":{},\"version\":{},\"kind\":{},\"message\":{}",
            s(&f.plugin),
            s(&f.version),
            s(&f.kind),
            s(&f.message)
        ),
        K::PluginDisabled(d) => {
            format!("\"plugin\":{},\"backoff_s\":{}", s(&d.plugin), d.backoff_s)
        }
        K::RecordingStored(r) => format!(
            "\"plugin\":{},\"id\":{},\"duration_ms\":{}",
            s(&r.plugin),
            s(&r.id),
            r.duration_ms
        ),
    };
    format!(
        "{{\"event\":{},\"tenant\":{},\"time_ms\":{},{body}}}",
        s(e.kind.name()),
        s(&e.tenant),
        e.time_ms
    )
}

impl Listener for Webhook {
    fn on_event(event: Event) -> Result<()> {
        let wanted = config::get_or("events", "");
        let name = event.kind.name();
        if !wanted.trim().is_empty() && !wanted.split(',').any(|w| w.trim() == name) {
            return Ok(());
        }
        let url = config::get("url").ok_or("config key url is not set")?;
        http::post_json(&url, &to_json(&event))?;
        Ok(())
    }
}

plugboard_sdk::export_listener!(Webhook);
