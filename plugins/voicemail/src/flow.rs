//! The adapter: the call flow on top of the SDK. Every rule it applies lives
//! in the pure modules; this file only moves data between them and the host.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use plugboard_sdk::prelude::*;
use plugboard_sdk::speech::DatetimeStyle;

use crate::greeting::{self, Greeting, GreetingKind, Reason};
use crate::menu::{Action, Menu, OptionsAction, options_key};
use crate::pin::{self, Attempt, Lock, PinSource, StoredPin};
use crate::quota;
use crate::settings::{Announce, Settings};
use crate::store::{self, Counts, Draft, Env, Level, Mailbox, Message, OutMail, Room, State};

struct Voicemail;

impl CallFlow for Voicemail {
    fn handle_call(call: Call) -> Result<()> {
        let entries = config::entries();
        let (settings, warnings) = Settings::parse(&entries);
        for w in &warnings {
            log::warn!("config: {w}");
        }
        let info = call.info();
        let mut cx = Cx {
            call: &call,
            s: settings,
            env: HostEnv,
            caller: info.caller.user.clone(),
            caller_name: info.caller.display_name.clone().unwrap_or_default(),
            call_id: info.call_id.clone(),
            via_trunk: info
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("X-Plugboard-Trunk")),
        };
        let redirection = redirect::info();
        let reason = redirection
            .as_ref()
            .map(|r| r.reason.clone())
            .or(info.redirect_reason.clone());
        let target = redirection
            .map(|r| r.original)
            .filter(|o| !o.trim().is_empty())
            .or_else(|| cx.s.mailbox.clone());
        match target {
            Some(number) => cx.deposit(&number, Reason::from_redirect(reason.as_deref())),
            None => cx.login(),
        }
    }
}

plugboard_sdk::export_call_flow!(Voicemail);

/// [`Env`] on the SDK.
struct HostEnv;

impl Env for HostEnv {
    fn kv_get(&mut self, key: &str) -> core::result::Result<Option<String>, String> {
        kv::get_string(key).map_err(|e| e.to_string())
    }
    fn kv_set(&mut self, key: &str, value: &str) -> core::result::Result<(), String> {
        kv::set(key, value).map_err(|e| e.to_string())
    }
    fn kv_delete(&mut self, key: &str) -> core::result::Result<(), String> {
        kv::delete(key).map(|_| ()).map_err(|e| e.to_string())
    }
    fn kv_list(&mut self, prefix: &str) -> core::result::Result<Vec<String>, String> {
        kv::list_keys(prefix).map_err(|e| e.to_string())
    }
    fn delete_recording(&mut self, id: &str) -> core::result::Result<(), String> {
        recordings::delete(id)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn set_mwi(&mut self, mailbox: &str, c: Counts) -> core::result::Result<(), String> {
        let counts = mwi::Counts {
            new_messages: c.new,
            old_messages: c.old,
            new_urgent: c.new_urgent,
            old_urgent: c.old_urgent,
        };
        mwi::set_counts(mailbox, counts).map_err(|e| e.to_string())
    }
    fn send_mail(&mut self, m: &OutMail) -> core::result::Result<String, String> {
        let mut out = mail::Mail::to(m.to.clone())
            .subject(m.subject.clone())
            .body(m.body.clone());
        for (name, id) in &m.attachments {
            out = out.attach_recording(name.clone(), id.clone());
        }
        mail::send(&out).map_err(|e| e.to_string())
    }
    fn local_date_time(&mut self, unix_ms: u64) -> (String, String) {
        let t = clock::to_local(unix_ms);
        (t.date_string(), t.time_string())
    }
    fn log(&mut self, level: Level, message: &str) {
        match level {
            Level::Info => log::info(message),
            Level::Warn => log::warn(message),
            Level::Error => log::error(message),
        }
    }
}

fn vm(name: &str) -> Prompt {
    // Tenant prompts fall back to the stock prompt of the same name.
    Prompt::tenant(name)
}

fn now_ms() -> u64 {
    clock::now().unix_ms
}

/// A number as speech when it reads as one (1 to 9 digits, no leading 0),
/// else digit by digit.
fn say_mailbox_number(number: &str) -> Vec<Prompt> {
    let plain = !number.is_empty()
        && number.len() <= 9
        && number.bytes().all(|b| b.is_ascii_digit())
        && !(number.len() > 1 && number.starts_with('0'));
    match number.parse::<u32>() {
        Ok(n) if plain => speech::say_number(n),
        _ => Prompt::digits(number),
    }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The mailbox for `number`: configured (as dialled, or as normalised by
/// the directory), else found in the directory, else (with `any_mailbox`
/// and `allow_any`) a mailbox with the defaults.
fn resolve(s: &Settings, number: &str, allow_any: bool) -> Option<Mailbox> {
    let n = number.trim();
    if n.is_empty() {
        return None;
    }
    if let Some(c) = s.mailbox(n) {
        return Some(Mailbox::configured(n, c, s));
    }
    let normalized = directory::normalize(n).ok();
    if let Some(e) = &normalized
        && let Some(c) = s.mailbox(e)
    {
        return Some(Mailbox::configured(e, c, s));
    }
    match directory::lookup_number(n) {
        Ok(Some(entry)) => {
            if let Some(ext) = &entry.extension
                && let Some(c) = s.mailbox(ext)
            {
                let mut mb = Mailbox::configured(ext, c, s);
                mb.name = mb.name.or(entry.display_name.clone());
                mb.email = mb.email.or(entry.mail.clone());
                return Some(mb);
            }
            let id = entry
                .extension
                .clone()
                .or(entry.number.clone())
                .or(normalized.clone())
                .unwrap_or_else(|| n.to_string());
            return Some(Mailbox::with_defaults(
                &id,
                entry.display_name,
                entry.mail,
                s,
            ));
        }
        Ok(None) => {}
        Err(e) => log::debug!("directory lookup of {n}: {e:?}"),
    }
    if !(allow_any && s.any_mailbox) {
        return None;
    }
    // International forms are normalised when the directory can; internal
    // numbers stay as dialled (they are the MWI account).
    let external = n.starts_with('+') || n.starts_with("00");
    let id = match normalized {
        Some(e) if external => e,
        _ => n.to_string(),
    };
    Some(Mailbox::with_defaults(&id, None, None, s))
}

struct Cx<'a> {
    call: &'a Call,
    s: Settings,
    env: HostEnv,
    caller: String,
    caller_name: String,
    call_id: String,
    /// The call came from a peer PBX (the host's `X-Plugboard-Trunk`).
    via_trunk: bool,
}

impl Cx<'_> {
    fn play(&self, prompts: &[Prompt]) -> Result<()> {
        self.call.play(prompts, false)?;
        Ok(())
    }

    /// Plays `prompts` (interruptible) and waits for one key.
    fn ask(&self, prompts: &[Prompt], timeout_ms: u32) -> Result<Option<char>> {
        self.call.play(prompts, true)?;
        let c = self
            .call
            .collect_digits(CollectOptions::new(1).first_timeout_ms(timeout_ms))?;
        Ok(c.digits.chars().next().or(c.terminator))
    }

    /// Plays `prompts` and reads digits ended by `#`.
    fn ask_number(&self, prompts: &[Prompt]) -> Result<String> {
        self.call.play(prompts, true)?;
        let c = self.call.collect_digits(
            CollectOptions::new(20)
                .first_timeout_ms(8_000)
                .inter_timeout_ms(4_000)
                .terminators("#"),
        )?;
        Ok(c.digits)
    }

    fn goodbye(&self) -> Result<()> {
        self.play(&[Prompt::stock("goodbye")])?;
        self.call.hangup();
        Ok(())
    }

    fn resolve(&self, number: &str) -> Option<Mailbox> {
        resolve(&self.s, number, true)
    }

    fn record_options(&self, min_ms: u32, max_ms: u32) -> RecordOptions {
        RecordOptions::new()
            .min_ms(min_ms)
            .max_ms(max_ms)
            .silence_ms(self.s.silence_s * 1000)
            .stop_keys("#")
            .beep(true)
    }

    /// Retention, MWI and the welcome mail of a mailbox this call involves.
    fn housekeeping(&mut self, mb: &Mailbox) {
        let now = now_ms();
        store::purge(&mut self.env, &mb.id, &self.s.retention, now);
        store::refresh_mwi(&mut self.env, &mb.id);
        if self.s.welcome_mail && mb.email.is_some() {
            self.welcome(mb, now);
        }
    }

    fn stored_pin(&mut self, mb: &Mailbox) -> Option<StoredPin> {
        match self.env.kv_get(&store::pin_key(&mb.id)) {
            Ok(v) => v.as_deref().and_then(StoredPin::decode),
            Err(e) => {
                log::warn!("mailbox {}: PIN unreadable: {e}", mb.id);
                None
            }
        }
    }

    fn pin_of(&mut self, mb: &Mailbox) -> Option<(String, PinSource)> {
        let stored = self.stored_pin(mb);
        pin::effective_pin(
            mb.config_pin.as_deref(),
            self.s.default_pin.as_deref(),
            stored.as_ref(),
        )
    }

    fn welcome(&mut self, mb: &Mailbox, now: u64) {
        let key = store::welcome_key(&mb.id);
        if !matches!(self.env.kv_get(&key), Ok(None)) {
            return;
        }
        let pin = match self.pin_of(mb) {
            Some((p, _)) => Some(p),
            None => {
                // No PIN anywhere: generate one for the owner and mail it.
                let mut h = DefaultHasher::new();
                (&self.call_id, now, &mb.id, &self.caller).hash(&mut h);
                let len = self.s.pin_min_length.max(6).min(self.s.pin_max_length);
                let p = pin::generate_pin(h.finish(), len);
                let stored = StoredPin {
                    pin: p.clone(),
                    base: mb.config_pin.clone().unwrap_or_default(),
                };
                match self.env.kv_set(&store::pin_key(&mb.id), &stored.encode()) {
                    Ok(()) => Some(p),
                    Err(e) => {
                        log::warn!("mailbox {}: PIN not stored, welcome mail later: {e}", mb.id);
                        return;
                    }
                }
            }
        };
        let Some(mail) = store::welcome_mail(mb, pin.as_deref()) else {
            return;
        };
        match self.env.send_mail(&mail) {
            Ok(q) => {
                log::info!("mailbox {}: welcome mail {q} queued", mb.id);
                if let Err(e) = self.env.kv_set(&key, &now.to_string()) {
                    log::warn!("mailbox {}: welcome mail not remembered: {e}", mb.id);
                }
            }
            Err(e) => log::warn!(
                "mailbox {}: welcome mail failed, retried next call: {e}",
                mb.id
            ),
        }
    }

    fn greetings(&mut self, mb: &Mailbox) -> BTreeMap<GreetingKind, String> {
        let mut out = BTreeMap::new();
        for kind in GreetingKind::ALL {
            if let Ok(Some(id)) = self.env.kv_get(&store::greeting_key(&mb.id, kind))
                && !id.is_empty()
            {
                out.insert(kind, id);
            }
        }
        out
    }

    /// "You have reached the mailbox of" + name, or "mailbox" + number.
    /// Returns the prompts and a text-to-speech recording to delete afterwards.
    fn identify(
        &self,
        mb: &Mailbox,
        recorded: &BTreeMap<GreetingKind, String>,
    ) -> (Vec<Prompt>, Option<String>) {
        let number = || {
            let mut p = vec![vm("vm/mailbox")];
            p.extend(say_mailbox_number(&mb.id));
            p
        };
        match mb.announce {
            Announce::None => (Vec::new(), None),
            Announce::Number => (number(), None),
            Announce::Name => {
                if let Some(id) = recorded.get(&GreetingKind::Name) {
                    return (
                        vec![vm("vm/mailbox-of"), Prompt::recording(id.clone())],
                        None,
                    );
                }
                if let Some(name) = &mb.name {
                    match speech::synthesize(name) {
                        Ok(id) => {
                            return (
                                vec![vm("vm/mailbox-of"), Prompt::recording(id.clone())],
                                Some(id),
                            );
                        }
                        Err(e) => log::debug!("name by speech unavailable: {e:?}"),
                    }
                }
                (number(), None)
            }
        }
    }

    fn greeting_prompts(
        &self,
        mb: &Mailbox,
        g: Greeting,
        recorded: &BTreeMap<GreetingKind, String>,
    ) -> (Vec<Prompt>, Option<String>) {
        let stock = |busy: bool| {
            let (mut p, tts) = self.identify(mb, recorded);
            p.push(Prompt::stock(if busy { "busy" } else { "not-available" }));
            (p, tts)
        };
        match g {
            Greeting::Recorded(kind) => match recorded.get(&kind) {
                Some(id) => (vec![Prompt::recording(id.clone())], None),
                None => stock(false),
            },
            Greeting::StockBusy => stock(true),
            Greeting::StockUnavailable => stock(false),
        }
    }

    /// A caller leaves a message for `number`.
    fn deposit(&mut self, number: &str, reason: Reason) -> Result<()> {
        let Some(mb) = self.resolve(number) else {
            log::info!("no mailbox for {number}");
            self.play(&[vm("vm/no-mailbox")])?;
            return self.goodbye();
        };
        self.housekeeping(&mb);
        self.call.answer()?;
        let now = clock::now();
        let open = mb
            .office_hours
            .as_ref()
            .is_none_or(|h| h.is_open(now.weekday, now.minute_of_day()));
        let recorded = self.greetings(&mb);
        let choice = greeting::choose(reason, open, |k| recorded.contains_key(&k));
        let (prompts, tts) = self.greeting_prompts(&mb, choice, &recorded);
        let mut played = self.call.play(&prompts, true);
        if let Err(Error::Call(CallError::NotFound(what))) = &played {
            log::warn!(
                "mailbox {}: greeting missing ({what}); stock greeting",
                mb.id
            );
            let (p, _) = self.greeting_prompts(&mb, Greeting::StockUnavailable, &BTreeMap::new());
            played = self.call.play(&p, true);
        }
        if let Some(id) = tts {
            let _ = recordings::delete(&id);
        }
        if played? == PlayOutcome::Interrupted {
            let key = self
                .call
                .collect_digits(CollectOptions::new(1).first_timeout_ms(500))?;
            if key.digits == "*" {
                // The owner logs in from the greeting.
                if self.authenticate(Some(&mb), false)? {
                    return self.session(&mb);
                }
                return self.goodbye();
            }
            // `0` (or any other key): straight to the beep.
        }
        // The quota: a full mailbox takes nothing; else the recording is cut
        // to the minutes left.
        let max_ms = match store::room(&mut self.env, &self.s, &mb) {
            Room::Full { why, usage } => {
                log::info!(
                    "{}; message from {} refused",
                    store::full_text(&mb, why, &usage),
                    self.caller
                );
                self.play(&[vm("vm/mailbox-full")])?;
                return self.goodbye();
            }
            Room::Free { max_ms } => max_ms,
        };
        let rec = self
            .call
            .record(self.record_options(self.s.min_length_s * 1000, max_ms))?;
        let Some(rec) = rec else {
            log::info!(
                "mailbox {}: message shorter than {} s discarded",
                mb.id,
                self.s.min_length_s
            );
            return self.goodbye();
        };
        let draft = Draft {
            caller: self.caller.clone(),
            caller_name: self.caller_name.clone(),
            time_ms: now.unix_ms,
            duration_ms: rec.duration_ms,
            recordings: vec![rec.id.clone()],
            urgent: false,
            forwarded_by: String::new(),
        };
        let s = self.s.clone();
        let done = store::deliver(&mut self.env, &s, &mb, &draft, now_ms(), &mut |n| {
            resolve(&s, n, true)
        });
        log::info!(
            "mailbox {}: message {} from {} ({} ms): {done:?}",
            mb.id,
            rec.id,
            self.caller,
            rec.duration_ms
        );
        if rec.stopped_by == RecordStop::Hangup {
            return Ok(());
        }
        self.play(&[vm("vm/message-recorded")])?;
        self.goodbye()
    }

    /// A direct call: the caller's own mailbox (own device or trusted caller
    /// id) asks only for the PIN; anyone else gives the mailbox number first.
    fn login(&mut self) -> Result<()> {
        self.call.answer()?;
        let own = self.own_mailbox();
        if let Some(mb) = own {
            if self.authenticate(Some(&mb), true)? {
                return self.session(&mb);
            }
            return self.goodbye();
        }
        for _ in 0..3 {
            let number = self.ask_number(&[vm("vm/enter-mailbox")])?;
            if number.is_empty() {
                continue;
            }
            let mb = self.resolve(&number);
            if self.authenticate(mb.as_ref(), false)? {
                if let Some(mb) = mb {
                    return self.session(&mb);
                }
            } else if mb.is_some() {
                // The mailbox exists: its own attempts and lock counted.
                return self.goodbye();
            }
        }
        self.goodbye()
    }

    fn own_mailbox(&self) -> Option<Mailbox> {
        // A peer PBX's caller ID is its word, not an authenticated user: no
        // owner's-device access over a trunk (the PIN is always asked).
        if self.via_trunk {
            return None;
        }
        // Not `any_mailbox`: every caller would own a PIN-less mailbox.
        if let Some(mb) = resolve(&self.s, &self.caller, false) {
            return Some(mb);
        }
        self.s
            .mailboxes
            .iter()
            .find(|(_, c)| c.trusted.iter().any(|t| pin::same_number(t, &self.caller)))
            .map(|(id, c)| Mailbox::configured(id, c, &self.s))
    }

    /// Asks for the PIN of `mb` (None: an unknown mailbox, always refused
    /// without saying so). Returns true when the caller may enter.
    fn authenticate(&mut self, mb: Option<&Mailbox>, own_device: bool) -> Result<bool> {
        let Some(mb) = mb else {
            self.ask_number(&[vm("vm/enter-pin")])?;
            self.play(&[vm("vm/login-incorrect")])?;
            return Ok(false);
        };
        let pin = self.pin_of(mb);
        if pin.is_none() {
            if own_device {
                return Ok(true);
            }
            log::info!(
                "mailbox {}: no PIN set; only the owner's device may enter",
                mb.id
            );
            self.play(&[vm("vm/login-incorrect")])?;
            return Ok(false);
        }
        let policy = self.s.pin_policy();
        let lock_key = store::lock_key(&mb.id);
        let mut lock = match self.env.kv_get(&lock_key) {
            Ok(v) => v.as_deref().map(Lock::decode).unwrap_or_default(),
            Err(e) => {
                log::warn!("mailbox {}: lock unreadable: {e}", mb.id);
                Lock::default()
            }
        };
        if lock.at(now_ms()).is_locked(now_ms()) {
            log::warn!("mailbox {}: login refused, locked", mb.id);
            self.play(&[vm("vm/locked")])?;
            return Ok(false);
        }
        for _ in 0..policy.max_failures.max(1) {
            let entered = self.ask_number(&[vm("vm/enter-pin")])?;
            if entered.is_empty() {
                continue;
            }
            let before = lock;
            let result = pin::attempt(
                &mut lock,
                pin.as_ref().map(|(p, _)| p.as_str()),
                &entered,
                now_ms(),
                &policy,
            );
            if lock != before
                && let Err(e) = self.env.kv_set(&lock_key, &lock.encode())
            {
                log::warn!("mailbox {}: lock not stored: {e}", mb.id);
            }
            match result {
                Attempt::Ok => {
                    if pin
                        .as_ref()
                        .is_some_and(|(_, src)| *src == PinSource::Default)
                    {
                        self.play(&[vm("vm/change-default-pin")])?;
                        self.change_pin(mb)?;
                    }
                    return Ok(true);
                }
                Attempt::Wrong => {
                    log::warn!("mailbox {}: wrong PIN from {}", mb.id, self.caller);
                    self.play(&[vm("vm/login-incorrect")])?;
                }
                Attempt::LockedNow | Attempt::Locked => {
                    log::warn!(
                        "mailbox {}: locked after wrong PINs from {}",
                        mb.id,
                        self.caller
                    );
                    self.play(&[vm("vm/locked")])?;
                    return Ok(false);
                }
            }
        }
        Ok(false)
    }

    fn refresh(&mut self, mb: &Mailbox) {
        store::refresh_mwi(&mut self.env, &mb.id);
    }

    /// The owner's session: counts, messages, options.
    fn session(&mut self, mb: &Mailbox) -> Result<()> {
        self.housekeeping(mb);
        let mut msgs: Vec<Message> = match store::list(&mut self.env, &mb.id) {
            Ok(m) => m,
            Err(e) => {
                log::error!("mailbox {}: messages unavailable: {e}", mb.id);
                self.play(&[Prompt::stock("error")])?;
                self.call.hangup();
                return Ok(());
            }
        };
        let usage = quota::usage(&msgs);
        msgs.retain(|m| m.state != State::Deleted);
        // New messages first, each group oldest first.
        msgs.sort_by_key(|m| (m.state != State::New, m.time_ms));
        let c = store::counts(&msgs);
        let mut intro = Vec::new();
        if let Some(why) = mb.quota.full(&usage) {
            log::info!("{}; owner warned", store::full_text(mb, why, &usage));
            intro.push(vm("vm/mailbox-full-owner"));
        }
        if c.new == 0 && c.old == 0 {
            intro.push(Prompt::stock("no-messages"));
        } else {
            intro.push(Prompt::stock("you-have"));
            intro.extend(speech::say_number(c.new));
            intro.push(vm("vm/new-messages"));
            intro.push(vm("vm/and"));
            intro.extend(speech::say_number(c.old));
            intro.push(vm("vm/old-messages"));
        }
        intro.push(vm("vm/main-menu"));
        self.call.play(&intro, true)?;
        let mut menu = Menu::new(msgs.len());
        loop {
            let key = self
                .call
                .collect_digits(CollectOptions::new(1).first_timeout_ms(6_000))?;
            let actions = match key.digits.chars().next().or(key.terminator) {
                Some(k) => menu.on_key(k),
                None => menu.on_timeout(),
            };
            for action in actions {
                match action {
                    Action::Play(i) => self.play_message(mb, &mut msgs[i], i)?,
                    Action::NoMore => self
                        .call
                        .play(&[vm("vm/no-more-messages"), vm("vm/main-menu")], true)
                        .map(|_| ())?,
                    Action::Delete(i) => {
                        self.change_state(mb, &mut msgs[i], State::Deleted);
                        self.call.play(&[vm("vm/message-deleted")], true)?;
                    }
                    Action::Undelete(i) => {
                        self.change_state(mb, &mut msgs[i], State::Old);
                        self.call
                            .play(&[vm("vm/message-undeleted"), vm("vm/message-menu")], true)?;
                    }
                    Action::Save(i) => {
                        self.change_state(mb, &mut msgs[i], State::Saved);
                        self.call.play(&[vm("vm/message-saved")], true)?;
                    }
                    Action::Forward(i) => {
                        let m = msgs[i].clone();
                        self.forward(mb, &m)?;
                        self.call.play(&[vm("vm/message-menu")], true)?;
                    }
                    Action::Options => {
                        self.options(mb)?;
                        self.call.play(&[vm("vm/main-menu")], true)?;
                    }
                    Action::Help => {
                        let p = if menu.current().is_some() {
                            "vm/message-menu"
                        } else {
                            "vm/main-menu"
                        };
                        self.call.play(&[vm(p)], true)?;
                    }
                    Action::Exit => return self.goodbye(),
                }
            }
        }
    }

    fn change_state(&mut self, mb: &Mailbox, m: &mut Message, state: State) {
        if let Err(e) = store::set_state(&mut self.env, &mb.id, m, state, now_ms()) {
            log::error!(
                "mailbox {}: message {} not set {}: {e}",
                mb.id,
                m.id,
                state.name()
            );
        }
        self.refresh(mb);
    }

    fn play_message(&mut self, mb: &Mailbox, m: &mut Message, i: usize) -> Result<()> {
        let mut p = vec![vm("vm/message")];
        p.extend(speech::say_number(count_u32(i + 1)));
        if m.urgent {
            p.push(vm("vm/urgent"));
        }
        p.push(vm("vm/received"));
        p.extend(speech::say_datetime(m.time_ms, DatetimeStyle::WeekdayTime));
        p.push(Prompt::stock("message-from"));
        let digits = Prompt::digits(&m.caller);
        if digits.is_empty() {
            p.push(vm("vm/unknown-caller"));
        } else {
            p.extend(digits);
        }
        if !m.forwarded_by.is_empty() {
            p.push(vm("vm/forwarded-by"));
            p.extend(say_mailbox_number(&m.forwarded_by));
        }
        p.push(Prompt::silence(300));
        let envelope = p.len();
        p.extend(m.recordings.iter().map(|r| Prompt::recording(r.clone())));
        p.push(Prompt::silence(300));
        p.push(vm("vm/message-menu"));
        match self.call.play(&p, true) {
            Ok(_) => {}
            Err(Error::Call(CallError::NotFound(what))) => {
                log::warn!("mailbox {}: message {} audio missing: {what}", mb.id, m.id);
                p.truncate(envelope);
                p.push(vm("vm/message-unavailable"));
                p.push(vm("vm/message-menu"));
                self.call.play(&p, true)?;
            }
            Err(e) => return Err(e),
        }
        if m.state == State::New {
            self.change_state(mb, m, State::Old);
        }
        Ok(())
    }

    fn forward(&mut self, mb: &Mailbox, m: &Message) -> Result<()> {
        let number = self.ask_number(&[vm("vm/forward-enter-mailbox")])?;
        let target = self.resolve(&number).filter(|t| t.id != mb.id);
        let Some(target) = target else {
            self.play(&[vm("vm/invalid-mailbox")])?;
            return Ok(());
        };
        // A full mailbox takes no forward (a group's full members are
        // skipped when it is delivered).
        store::purge(&mut self.env, &target.id, &self.s.retention, now_ms());
        if let Room::Full { why, usage } = store::room(&mut self.env, &self.s, &target) {
            log::info!(
                "{}; forward of {} from {} refused",
                store::full_text(&target, why, &usage),
                m.id,
                mb.id
            );
            return self.play(&[vm("vm/mailbox-full")]);
        }
        self.play(&[vm("vm/record-comment")])?;
        let comment = self
            .call
            .record(self.record_options(1_000, self.s.max_length_s * 1000))?;
        let mut recordings = Vec::new();
        let mut duration = m.duration_ms;
        if let Some(c) = &comment {
            recordings.push(c.id.clone());
            duration = duration.saturating_add(c.duration_ms);
        }
        recordings.extend(m.recordings.iter().cloned());
        let draft = Draft {
            caller: mb.id.clone(),
            caller_name: mb.name.clone().unwrap_or_default(),
            time_ms: now_ms(),
            duration_ms: duration,
            recordings,
            urgent: m.urgent,
            forwarded_by: mb.id.clone(),
        };
        let s = self.s.clone();
        let done = store::deliver(&mut self.env, &s, &target, &draft, now_ms(), &mut |n| {
            resolve(&s, n, true)
        });
        log::info!(
            "mailbox {}: message {} forwarded to {}: {done:?}",
            mb.id,
            m.id,
            target.id
        );
        self.play(&[vm("vm/message-forwarded")])
    }

    fn options(&mut self, mb: &Mailbox) -> Result<()> {
        let mut silent = 0;
        loop {
            let Some(key) = self.ask(&[vm("vm/options-menu")], 6_000)? else {
                silent += 1;
                if silent >= 3 {
                    return Ok(());
                }
                continue;
            };
            silent = 0;
            match options_key(key) {
                OptionsAction::Record(kind) => self.record_greeting(mb, kind)?,
                OptionsAction::ClearTemporary => {
                    let key = store::greeting_key(&mb.id, GreetingKind::Temporary);
                    if let Ok(Some(old)) = self.env.kv_get(&key) {
                        let _ = self.env.kv_delete(&key);
                        let _ = self.env.delete_recording(&old);
                    }
                    self.play(&[vm("vm/greeting-cleared")])?;
                }
                OptionsAction::ChangePin => self.change_pin(mb)?,
                OptionsAction::Back => return Ok(()),
                OptionsAction::Invalid => self.play(&[Prompt::stock("invalid")])?,
            }
        }
    }

    fn record_greeting(&mut self, mb: &Mailbox, kind: GreetingKind) -> Result<()> {
        let (prompt, max_ms) = if kind == GreetingKind::Name {
            ("vm/record-name", 10_000)
        } else {
            ("vm/record-greeting", 120_000)
        };
        self.play(&[vm(prompt)])?;
        let Some(rec) = self.call.record(self.record_options(1_000, max_ms))? else {
            return self.play(&[vm("vm/too-short")]);
        };
        let key = store::greeting_key(&mb.id, kind);
        let old = self.env.kv_get(&key).ok().flatten();
        if let Err(e) = self.env.kv_set(&key, &rec.id) {
            log::error!("mailbox {}: {} greeting not stored: {e}", mb.id, kind.key());
            let _ = self.env.delete_recording(&rec.id);
            return self.play(&[Prompt::stock("error")]);
        }
        if let Some(old) = old.filter(|o| *o != rec.id) {
            let _ = self.env.delete_recording(&old);
        }
        log::info!("mailbox {}: {} greeting {}", mb.id, kind.key(), rec.id);
        if rec.stopped_by == RecordStop::Hangup {
            return Ok(());
        }
        self.play(&[vm("vm/greeting-saved")])
    }

    fn change_pin(&mut self, mb: &Mailbox) -> Result<()> {
        let policy = self.s.pin_policy();
        let new = self.ask_number(&[vm("vm/enter-new-pin")])?;
        if new.is_empty() {
            return Ok(());
        }
        if policy.check_new(&new).is_err() {
            let mut p = vec![vm("vm/pin-invalid")];
            p.extend(speech::say_number(count_u32(policy.min_len)));
            p.push(vm("vm/and"));
            p.extend(speech::say_number(count_u32(policy.max_len)));
            p.push(vm("vm/digits-long"));
            return self.play(&p);
        }
        let again = self.ask_number(&[vm("vm/reenter-pin")])?;
        if again != new {
            return self.play(&[vm("vm/pin-mismatch")]);
        }
        let stored = StoredPin {
            pin: new,
            base: mb.config_pin.clone().unwrap_or_default(),
        };
        match self.env.kv_set(&store::pin_key(&mb.id), &stored.encode()) {
            Ok(()) => {
                log::info!("mailbox {}: PIN changed", mb.id);
                self.play(&[vm("vm/pin-changed")])
            }
            Err(e) => {
                log::error!("mailbox {}: PIN not stored: {e}", mb.id);
                self.play(&[Prompt::stock("error")])
            }
        }
    }
}
