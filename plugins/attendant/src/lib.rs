//! The demo attendant.
//!
//! Mode `attend` (default): answers, plays `welcome`, takes an extension
//! number ended by `#`, and dials it. When the extension is busy or does not
//! answer within `ring_timeout_s` (default 20), it records a message for that
//! extension (at least 1 s, at most `max_message_s` (default 120); `#` or
//! `silence_s` (default 5) of silence ends it).
//!
//! Mode `mailbox` (config `mode = "mailbox"`, the demo's `*98`): plays the
//! messages recorded for the calling user, oldest first.
//!
//! Messages are recordings of this plugin; the key `msg/<ext>/<id>` in the
//! plugin's key-value store holds the caller's number.

use plugboard_sdk::prelude::*;

struct Attendant;

impl CallFlow for Attendant {
    fn handle_call(call: Call) -> Result<()> {
        match config::get("mode").as_deref() {
            Some("mailbox") => mailbox(&call),
            _ => attend(&call),
        }
    }
}

plugboard_sdk::export_call_flow!(Attendant);

fn attend(call: &Call) -> Result<()> {
    call.answer()?;
    for _attempt in 0..3 {
        call.play(&[Prompt::stock("welcome")], true)?;
        let input = call.collect_digits(
            CollectOptions::new(6)
                .first_timeout_ms(8000)
                .inter_timeout_ms(3000)
                .terminators("#"),
        )?;
        if input.digits.is_empty() {
            continue;
        }
        let ext = input.digits;
        log::info(&format!("dialling extension {ext}"));
        call.play(&[Prompt::stock("connecting")], false)?;
        match call.dial(
            &ext,
            DialOptions::timeout_ms(config_ms("ring_timeout_s", 20)),
        )? {
            DialOutcome::Answered => return Ok(()),
            DialOutcome::Failed => {
                call.play(&[Prompt::stock("invalid")], false)?;
            }
            DialOutcome::Busy => return leave_message(call, &ext, "busy"),
            DialOutcome::NoAnswer => return leave_message(call, &ext, "not-available"),
        }
    }
    call.play(&[Prompt::stock("goodbye")], false)?;
    call.hangup();
    Ok(())
}

fn config_ms(key: &str, default_s: u32) -> u32 {
    config::get(key)
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(default_s)
        .saturating_mul(1000)
}

fn leave_message(call: &Call, ext: &str, prompt: &str) -> Result<()> {
    call.play(&[Prompt::stock(prompt)], false)?;
    let rec = call.record(
        RecordOptions::new()
            .min_ms(1000)
            .max_ms(config_ms("max_message_s", 120))
            .silence_ms(config_ms("silence_s", 5))
            .stop_keys("#")
            .beep(true),
    )?;
    let Some(rec) = rec else {
        log::info("message too short: discarded");
        return Ok(());
    };
    let caller = call.info().caller.user;
    kv::set(&format!("msg/{ext}/{}", rec.id), caller.as_bytes())?;
    log::info(&format!(
        "message {} for {ext} from {caller}: {} ms",
        rec.id, rec.duration_ms
    ));
    if rec.stopped_by != RecordStop::Hangup {
        call.play(&[Prompt::stock("goodbye")], false)?;
        call.hangup();
    }
    Ok(())
}

fn mailbox(call: &Call) -> Result<()> {
    call.answer()?;
    let me = call.info().caller.user;
    let prefix = format!("msg/{me}/");
    let keys = kv::list_keys(&prefix)?;
    if keys.is_empty() {
        call.play(
            &[Prompt::stock("no-messages"), Prompt::stock("goodbye")],
            false,
        )?;
        call.hangup();
        return Ok(());
    }
    let mut intro = vec![Prompt::stock("you-have")];
    intro.extend(Prompt::digits(&keys.len().to_string()));
    intro.push(Prompt::stock("messages"));
    call.play(&intro, true)?;
    for key in &keys {
        let id = &key[prefix.len()..];
        let from = kv::get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let mut p = vec![Prompt::stock("message-from")];
        p.extend(Prompt::digits(&from));
        p.push(Prompt::silence(300));
        p.push(Prompt::recording(id));
        p.push(Prompt::silence(300));
        call.play(&p, true)?;
        call.play(&[Prompt::stock("next-message")], true)?;
        let next = call.collect_digits(CollectOptions::new(1).first_timeout_ms(5000))?;
        if next.digits != "1" {
            break;
        }
    }
    call.play(&[Prompt::stock("goodbye")], false)?;
    call.hangup();
    Ok(())
}
