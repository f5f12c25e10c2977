//! Test guest `snoop`: proves that a plugin cannot reach another tenant's data
//! with crafted keys, ids and names. Driven by config `mode`:
//!
//! - `plant`: answers, stores kv `secret` = this tenant's domain, hangs up.
//! - `probe`: answers and tries to reach the tenant named by config `other`
//!   (whose plant run stored `secret` = its domain): kv get/list-keys/delete/set
//!   with traversal, encoded, NUL, separator, over-long and look-alike keys;
//!   recordings get/list/delete with crafted ids; tenant prompts, dial and
//!   transfer with crafted names (the tenant's prompt folder and user
//!   directory). Each attempt's outcome goes to the host log (`snoop: #N ...`)
//!   and, as JSON, to kv `probe-report`; the summary line is
//!   `snoop: leaked=N tried=M not_own=K controls=C/D`.
//! - `check`: logs this tenant's `secret` and kv keys
//!   (`snoop: check tenant=".." secret=".." keys=[..]`), hangs up.
//!
//! Only data equal to the other tenant's secret counts as `leaked`; an error is
//! never a leak. `not_own` counts every sign of reaching outside its own scope:
//! data that is not its own tenant's name, a key it never wrote, a delete that
//! found something, a recording it never made, a prompt or user that exists
//! only in the other tenant. Controls prove the probe can see its own data
//! (so a run where everything merely failed does not pass silently).
//!
//! The e2e test (tests/e2e/tests/isolation.rs) sets up what the probe expects:
//! extension `OWN_EXT` exists (unregistered) in the probing tenant and
//! `OTHER_ONLY_EXT` only in the other one; tenant prompt `OWN_PROMPT` exists
//! only in the probing tenant's folder and `PLANTED_PROMPT` only in the other's.
use std::fmt::Write as _;

use plugboard_sdk::prelude::*;

/// The kv key `plant` writes and `check` reads.
const SECRET: &str = "secret";
/// The probe's own control key (value: its own tenant's domain).
const MINE: &str = "mine";
/// The kv key of the probe's JSON report.
const REPORT: &str = "probe-report";
/// A tenant prompt that exists only in the other tenant's prompt folder.
const PLANTED_PROMPT: &str = "snoop-planted";
/// A tenant prompt that exists in the probing tenant's own folder (control).
const OWN_PROMPT: &str = "snoop-own";
/// An extension that exists only in the other tenant.
const OTHER_ONLY_EXT: &str = "201";
/// An extension of the probing tenant, not registered (control: `no-answer`).
const OWN_EXT: &str = "102";
/// A valid-shaped recording id that was never stored.
const ZERO_ID: &str = "00000000000000000000000000000000";

struct Snoop;

impl CallFlow for Snoop {
    fn handle_call(call: Call) -> Result<()> {
        call.answer()?;
        let own = call.info().tenant;
        match config::get_or("mode", "").as_str() {
            "plant" => {
                kv::set(SECRET, own.as_bytes())?;
                log::info!("snoop: planted secret for tenant={}", json(&own));
            }
            "check" => {
                let secret = kv::get_string(SECRET)?;
                let keys = kv::list_keys("")?;
                log::info!(
                    "snoop: check tenant={} secret={} keys={}",
                    json(&own),
                    secret.as_deref().map_or("(none)".to_string(), json),
                    json_list(&keys)
                );
            }
            "probe" => {
                let other = config::get_or("other", "");
                if other.is_empty() || other == own {
                    return Err(format!("snoop: probe needs config other != {own}").into());
                }
                let mut p = Probe::new(&call, own, other);
                p.run();
                p.finish()?;
            }
            m => return Err(format!("snoop: unknown mode {m:?}").into()),
        }
        call.hangup();
        Ok(())
    }
}

plugboard_sdk::export_call_flow!(Snoop);

/// One probe attempt and what it returned.
struct Attempt {
    op: &'static str,
    arg: String,
    outcome: String,
    /// Returned data (or an effect) that is not the probe's own.
    not_own: bool,
    /// Returned data equal to the other tenant's secret.
    leak: bool,
}

struct Probe<'c> {
    call: &'c Call,
    own: String,
    other: String,
    attempts: Vec<Attempt>,
    controls: Vec<(&'static str, bool, String)>,
}

impl<'c> Probe<'c> {
    fn new(call: &'c Call, own: String, other: String) -> Self {
        Probe {
            call,
            own,
            other,
            attempts: Vec::new(),
            controls: Vec::new(),
        }
    }

    fn run(&mut self) {
        self.controls();
        let o = self.other.clone();
        let upper = o.to_ascii_uppercase();

        // Key-value reads: the plain key, then every crafted form of
        // "<other tenant>/<plugin>/secret" a path- or string-joined store might resolve.
        let long_escape = format!("{}{o}/snoop/secret", "../".repeat(100));
        let longest_valid = format!("{}secret", "../".repeat(83));
        let gets: Vec<String> = vec![
            SECRET.into(),
            format!("../{o}/snoop/secret"),
            format!("../../{o}/snoop/secret"),
            format!("../../../{o}/snoop/secret"),
            format!("{o}/snoop/secret"),
            format!("/{o}/snoop/secret"),
            format!("{upper}/snoop/secret"),
            "..%2F..%2Fsecret".into(),
            format!("..%2F..%2F{o}%2Fsnoop%2Fsecret"),
            format!("%2e%2e/%2e%2e/{o}/snoop/secret"),
            format!("..\\..\\{o}\\snoop\\secret"),
            format!("{o}\0snoop\0secret"),
            format!("{o}\u{1f}snoop\u{1f}secret"),
            format!("{o}\nsnoop\nsecret"),
            format!("{o}:snoop:secret"),
            "secret\0".into(),
            "\0".into(),
            "\\0".into(),
            "/".into(),
            "..".into(),
            ".".into(),
            "./secret".into(),
            "snoop/secret".into(),
            "/secret".into(),
            "secret/".into(),
            " secret".into(),
            "SECRET".into(),
            "secre*".into(),
            String::new(),
            long_escape.clone(),
            longest_valid,
            "k".repeat(256),
            "k".repeat(257),
            // Unicode look-alikes: Cyrillic "ѕесrеt", fullwidth solidus,
            // one-dot leaders, division slash, a zero-width space.
            "\u{455}\u{435}\u{441}r\u{435}t".into(),
            format!("..\u{ff0f}{o}\u{ff0f}snoop\u{ff0f}secret"),
            format!("\u{2024}\u{2024}/{o}/snoop/secret"),
            format!("{o}\u{2215}snoop\u{2215}secret"),
            "secret\u{200b}".into(),
        ];
        for k in &gets {
            self.kv_get(k);
        }

        // Listing: the empty prefix must list only the probe's own key.
        let prefixes: Vec<String> = vec![
            String::new(),
            SECRET.into(),
            "s".into(),
            "../".into(),
            format!("../{o}/"),
            o.clone(),
            format!("{o}/snoop/"),
            "/".into(),
            "%".into(),
            "\0".into(),
            "\u{455}".into(),
            "p".repeat(257),
        ];
        for p in &prefixes {
            self.kv_list(p);
        }

        // Recordings: the probe never recorded, so any hit is not its own.
        let ids: Vec<String> = vec![
            "../x".into(),
            format!("../../{o}/snoop/{ZERO_ID}"),
            format!("{o}/snoop/{ZERO_ID}"),
            "../../plugboard.redb".into(),
            "/etc/passwd".into(),
            "/tmp/x.wav".into(),
            "..\\..".into(),
            format!("..\\..\\{o}\\snoop\\{ZERO_ID}"),
            "%2e%2e%2f%2e%2e%2fplugboard.redb".into(),
            ZERO_ID.into(),
            ZERO_ID.to_ascii_uppercase().replace('0', "A"),
            format!("{}/", &ZERO_ID[1..]),
            format!("{ZERO_ID}.wav"),
            String::new(),
            "\0".into(),
        ];
        for id in &ids {
            self.rec_get(id);
        }
        self.rec_list();
        self.play(
            "play.recording",
            Prompt::recording(format!("../../{o}/snoop/{ZERO_ID}")),
        );
        self.play("play.recording", Prompt::recording("../x"));

        // The tenant's prompt folder.
        for name in [
            PLANTED_PROMPT.to_string(),
            format!("../{o}/prompts/{PLANTED_PROMPT}"),
            format!("../../tenants/{o}/prompts/{PLANTED_PROMPT}"),
            format!("{o}/prompts/{PLANTED_PROMPT}"),
            format!("%2e%2e/{o}/prompts/{PLANTED_PROMPT}"),
            format!("..\\{o}\\prompts\\{PLANTED_PROMPT}"),
            format!("/{o}/prompts/{PLANTED_PROMPT}"),
        ] {
            self.play("play.tenant", Prompt::tenant(name));
        }
        self.play(
            "play.stock",
            Prompt::stock(format!("../../tenants/{o}/prompts/{PLANTED_PROMPT}")),
        );

        // The tenant's user directory and dial plan.
        for target in [
            OTHER_ONLY_EXT.to_string(),
            format!("{OTHER_ONLY_EXT}@{o}"),
            format!("sip:{OTHER_ONLY_EXT}@{o}"),
            format!("{o}/{OTHER_ONLY_EXT}"),
            format!("../{o}/{OTHER_ONLY_EXT}"),
            format!("{OTHER_ONLY_EXT}%40{o}"),
        ] {
            self.dial(&target);
        }
        for target in [
            "700".to_string(),
            "701".to_string(),
            OTHER_ONLY_EXT.to_string(),
            format!("700@{o}"),
        ] {
            self.transfer(&target);
        }

        // Deletes of keys the probe never wrote (after the reads, so a broken
        // store would first show the leak, then lose the other tenant's data,
        // which the other tenant's check run would also see).
        for k in [
            SECRET.to_string(),
            format!("../{o}/snoop/secret"),
            format!("../../{o}/snoop/secret"),
            format!("{o}/snoop/secret"),
            "..%2F..%2Fsecret".to_string(),
            format!("{o}\0snoop\0secret"),
            "\0".to_string(),
            "..".to_string(),
            long_escape.clone(),
        ] {
            self.kv_delete(&k);
        }
        for id in [
            "../x".to_string(),
            format!("../../{o}/snoop/{ZERO_ID}"),
            "/etc/passwd".to_string(),
            "..\\..".to_string(),
            ZERO_ID.to_string(),
        ] {
            self.rec_delete(&id);
        }

        // Writes that try to overwrite the other tenant's secret; valid keys
        // must land in the probe's own scope as plain keys (the e2e test reads
        // both tenants back with mode = "check").
        let tampered = format!("tampered-by-{}", self.own);
        for k in [
            format!("../{o}/snoop/secret"),
            format!("../../{o}/snoop/secret"),
            format!("{o}/snoop/secret"),
            format!("..%2F..%2F{o}%2Fsnoop%2Fsecret"),
            format!("..\\..\\{o}\\snoop\\secret"),
            format!("{o}\0snoop\0secret"),
            long_escape,
        ] {
            self.kv_set(&k, &tampered);
        }
    }

    /// Proves the probe reaches its own data, so refusals elsewhere mean something.
    fn controls(&mut self) {
        let own = self.own.clone();
        let stored = kv::set(MINE, own.as_bytes()).and_then(|()| kv::get_string(MINE));
        let ok = matches!(&stored, Ok(Some(v)) if *v == own);
        self.control("kv.get own key", ok, format!("{stored:?}"));

        let listed = kv::list_keys("");
        let ok = matches!(&listed, Ok(k) if k.len() == 1 && k[0] == MINE);
        self.control("kv.list own keys", ok, format!("{listed:?}"));

        let dialled = self.call.dial(OWN_EXT, DialOptions::timeout_ms(1_000));
        let ok = matches!(dialled, Ok(DialOutcome::NoAnswer));
        self.control("dial own user", ok, format!("{dialled:?}"));

        let played = self.call.play(&[Prompt::tenant(OWN_PROMPT)], false);
        let ok = matches!(played, Ok(PlayOutcome::Completed));
        self.control("play own tenant prompt", ok, format!("{played:?}"));
    }

    fn control(&mut self, what: &'static str, ok: bool, outcome: String) {
        log::info!(
            "snoop: control {what}: {} ({outcome})",
            if ok { "ok" } else { "FAILED" }
        );
        self.controls.push((what, ok, outcome));
    }

    fn push(&mut self, op: &'static str, arg: &str, outcome: String, not_own: bool, leak: bool) {
        let n = self.attempts.len() + 1;
        log::info!(
            "snoop: #{n} {op} {} -> {outcome}{}{}",
            json(arg),
            if not_own { " NOT-OWN" } else { "" },
            if leak { " LEAK" } else { "" }
        );
        self.attempts.push(Attempt {
            op,
            arg: arg.to_string(),
            outcome,
            not_own,
            leak,
        });
    }

    /// Outcome of returned bytes: (text, not own, leak).
    fn judge(&self, v: &[u8]) -> (String, bool, bool) {
        let text = String::from_utf8_lossy(v);
        (
            format!("data {}", json(&text)),
            v != self.own.as_bytes(),
            v == self.other.as_bytes(),
        )
    }

    fn kv_get(&mut self, key: &str) {
        let (outcome, not_own, leak) = match kv::get(key) {
            Ok(None) => ("none".to_string(), false, false),
            Ok(Some(v)) => self.judge(&v),
            Err(e) => (err(&e), false, false),
        };
        self.push("kv.get", key, outcome, not_own, leak);
    }

    fn kv_list(&mut self, prefix: &str) {
        let (outcome, not_own, leak) = match kv::list_keys(prefix) {
            Ok(keys) => {
                let foreign: Vec<&String> = keys.iter().filter(|k| *k != MINE).collect();
                // A key the probe never wrote: does its value hold the other secret?
                let leak = foreign
                    .iter()
                    .any(|k| matches!(kv::get(k), Ok(Some(v)) if v == self.other.as_bytes()));
                (
                    format!("keys {}", json_list(&keys)),
                    !foreign.is_empty(),
                    leak,
                )
            }
            Err(e) => (err(&e), false, false),
        };
        self.push("kv.list-keys", prefix, outcome, not_own, leak);
    }

    fn kv_delete(&mut self, key: &str) {
        let (outcome, not_own) = match kv::delete(key) {
            // The probe never wrote this key: something existed that is not its own.
            Ok(true) => ("existed".to_string(), true),
            Ok(false) => ("absent".to_string(), false),
            Err(e) => (err(&e), false),
        };
        self.push("kv.delete", key, outcome, not_own, false);
    }

    fn kv_set(&mut self, key: &str, value: &str) {
        let outcome = match kv::set(key, value.as_bytes()) {
            Ok(()) => "stored".to_string(),
            Err(e) => err(&e),
        };
        self.push("kv.set", key, outcome, false, false);
    }

    fn rec_get(&mut self, id: &str) {
        let (outcome, not_own) = match recordings::get(id) {
            Ok(None) => ("none".to_string(), false),
            Ok(Some(m)) => (format!("recording {} {} bytes", m.id, m.size_bytes), true),
            Err(e) => (err(&e), false),
        };
        self.push("recordings.get", id, outcome, not_own, false);
    }

    fn rec_list(&mut self) {
        let (outcome, not_own) = match recordings::list() {
            Ok(list) => (
                format!(
                    "{} recordings {}",
                    list.len(),
                    json_list(&list.iter().map(|m| m.id.clone()).collect::<Vec<_>>())
                ),
                !list.is_empty(),
            ),
            Err(e) => (err(&e), false),
        };
        self.push("recordings.list", "", outcome, not_own, false);
    }

    fn rec_delete(&mut self, id: &str) {
        let (outcome, not_own) = match recordings::delete(id) {
            Ok(true) => ("existed".to_string(), true),
            Ok(false) => ("absent".to_string(), false),
            Err(e) => (err(&e), false),
        };
        self.push("recordings.delete", id, outcome, not_own, false);
    }

    fn play(&mut self, op: &'static str, prompt: Prompt) {
        let arg = match &prompt {
            Prompt::Stock(n) | Prompt::Tenant(n) | Prompt::Recording(n) => n.clone(),
            Prompt::Silence(ms) => ms.to_string(),
        };
        let (outcome, not_own) = match self.call.play(&[prompt], false) {
            // Audio was found: a crafted name or the other tenant's prompt resolved.
            Ok(o) => (format!("played {o:?}"), true),
            Err(e) => (err(&e), false),
        };
        self.push(op, &arg, outcome, not_own, false);
    }

    fn dial(&mut self, target: &str) {
        let (outcome, not_own) = match self.call.dial(target, DialOptions::timeout_ms(1_000)) {
            // No such user in this tenant's directory.
            Ok(DialOutcome::Failed) => ("failed".to_string(), false),
            // Anything else means the target was found as a user.
            Ok(o) => (format!("{o:?}"), true),
            Err(e) => (err(&e), false),
        };
        self.push("call.dial", target, outcome, not_own, false);
    }

    fn transfer(&mut self, target: &str) {
        let (outcome, not_own) = match self.call.transfer(target) {
            Ok(()) => ("transferred".to_string(), true),
            Err(Error::Call(CallError::Denied(m))) => {
                // Denied means the number was found in a dial plan (as a plugin).
                (format!("denied {}", json(&m)), true)
            }
            Err(e) => (err(&e), false),
        };
        self.push("call.transfer", target, outcome, not_own, false);
    }

    /// Stores the report in kv and logs the summary line.
    fn finish(self) -> Result<()> {
        let tried = self.attempts.len();
        let leaked = self.attempts.iter().filter(|a| a.leak).count();
        let not_own = self.attempts.iter().filter(|a| a.not_own).count();
        let controls_ok = self.controls.iter().filter(|c| c.1).count();
        let mut r = String::new();
        write!(
            r,
            "{{\"tenant\":{},\"other\":{},\"tried\":{tried},\"leaked\":{leaked},\"not_own\":{not_own},\"controls\":[",
            json(&self.own),
            json(&self.other)
        )?;
        for (i, (what, ok, outcome)) in self.controls.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(
                r,
                "{sep}{{\"control\":{},\"ok\":{ok},\"outcome\":{}}}",
                json(what),
                json(outcome)
            )?;
        }
        r.push_str("],\"attempts\":[");
        for (i, a) in self.attempts.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(
                r,
                "{sep}{{\"op\":{},\"arg\":{},\"outcome\":{},\"not_own\":{},\"leak\":{}}}",
                json(a.op),
                json(&a.arg),
                json(&a.outcome),
                a.not_own,
                a.leak
            )?;
        }
        r.push_str("]}");
        kv::set(REPORT, r.as_bytes())?;
        log::info!(
            "snoop: leaked={leaked} tried={tried} not_own={not_own} controls={controls_ok}/{}",
            self.controls.len()
        );
        Ok(())
    }
}

/// A storage or call error as outcome text (never a leak).
fn err(e: &impl std::fmt::Debug) -> String {
    let text = format!("{e:?}");
    format!("error {}", json(&text))
}

/// `s` as a JSON string literal (control characters escaped), shortened when long.
fn json(s: &str) -> String {
    const KEEP: usize = 60;
    let (shown, cut) = if s.chars().count() > KEEP + 12 {
        (s.chars().take(KEEP).collect::<String>(), true)
    } else {
        (s.to_string(), false)
    };
    let mut out = String::from("\"");
    for c in shown.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    if cut {
        let _ = write!(out, "...({} bytes)", s.len());
    }
    out.push('"');
    out
}

fn json_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| json(s)).collect();
    format!("[{}]", parts.join(","))
}
