//! The voicemail plugin end to end, with real peers: SIPp callers, phones, a
//! peer PBX (trunk) and an RFC 3842 subscriber, aiosmtpd as the mail server,
//! slapd as the directory, and the host's controlled clock (`[testing]
//! clock_file`) for retention.
//!
//! Callers' audio and keys are RTP captures written per call
//! (`servers::RtpScript`: a PCMA tone as "speech", RFC 4733 keys) and played by
//! SIPp (`-key audio FILE`). SIPp logs what it saw (`-trace_logs`): NOTIFY
//! bodies ("notify 1/0 ...") and finished calls ("done CALL-ID").
//!
//! Needs `cargo build --release -p plugboard`, `scripts/build-plugins.sh` and
//! the test packages (SIPp, python3-aiosmtpd, slapd, ldap-utils). Run with
//! `cargo test --release -p plugboard-e2e --test voicemail -- --test-threads=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use plugboard_e2e::servers::{
    LDAP_OTHER, LDAP_PEOPLE, Ldap, RtpScript, Smtp, assert_wav, free_tcp_port, ldap_person,
};
use plugboard_e2e::{
    DOMAIN, Pbx, Setup, calls_in_background, describe, free_udp_port, plugin_wasm, register_at,
    repo_root, scenario, sipp_spawn, wait_bounded,
};

/// The voicemail number of the dial plan.
const VM: &str = "800";
/// The PIN of mailboxes 102 and 103 (repeated digit on purpose).
const PIN: &str = "4711";
/// The controlled clock's start: Tuesday 10:15 in Europe/Berlin.
const T0: &str = "2027-03-02T09:15:00Z";
/// The mail subject template ([`expect_subject`]: what it renders for 101's
/// message to 102 at T0).
const SUBJECT_TEMPLATE: &str = "{urgent}Voicemail for {mailbox_name} ({mailbox}) from {caller_name}, {duration}, {date} {time}";

/// What a test's PBX has besides the voicemail dial plan entry.
#[derive(Default)]
struct Opts {
    /// Port of the tenant's SMTP server (running or not).
    smtp_port: u16,
    /// `[testing] clock_file`.
    clock: Option<PathBuf>,
    /// A trunk peer at 127.0.0.1:PORT with MWI.
    trunk: Option<u16>,
    /// `[tenant.directory]` servers (with the numbering plan).
    ldap: Option<String>,
}

/// The test tenant is the harness's DOMAIN: users 101 (caller), 102 (do not
/// disturb, busy → voicemail; mails to bob@example.com), 103 (no answer →
/// voicemail, never registered: forwarded at once), 104; voicemail on 800.
fn setup(o: &Opts) -> Setup {
    let mut s = Setup {
        users: Vec::new(),
        dialplan: Vec::new(),
        ..Setup::default()
    };
    s.plugins
        .push(("voicemail".into(), plugin_wasm("voicemail")));
    s.plugin_grants.push((
        "voicemail".into(),
        ["kv", "recordings", "mail", "mwi", "directory"]
            .map(String::from)
            .to_vec(),
    ));
    if let Some(clock) = &o.clock {
        s.tables.push_str(&format!(
            "\n[testing]\nclock_file = \"{}\"\n",
            clock.display()
        ));
    }
    // Nothing is rendered between `domain = ...` and this: these keys and
    // tables belong to the harness's tenant.
    let mut t = String::from("timezone = \"Europe/Berlin\"\n\n");
    for (ext, rules) in [
        ("101", ""),
        ("102", "rules = { dnd = true, forward_busy = \"800\" }\n"),
        (
            "103",
            "rules = { forward_no_answer = \"800\", no_answer_s = 5 }\n",
        ),
        ("104", ""),
    ] {
        t.push_str(&format!(
            "[[tenant.user]]\nextension = \"{ext}\"\npassword = \"pw{ext}\"\n{rules}"
        ));
    }
    t.push_str(&format!(
        "\n[tenant.mail]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         from = \"Voicemail <vm@{DOMAIN}>\"\ntimeout_s = 5\n",
        o.smtp_port
    ));
    if let Some(url) = &o.ldap {
        t.push_str(&format!(
            "\n[tenant.numbering]\ncountry_code = \"49\"\narea_code = \"8142\"\n\
             base_number = \"4799\"\nextension_ranges = [\"100-199\"]\n\
             \n[tenant.directory]\nservers = [\"{url}\"]\nbases = [\"{LDAP_PEOPLE}\"]\ntimeout_s = 3\n"
        ));
    }
    if let Some(port) = o.trunk {
        t.push_str(&format!(
            "\n[[tenant.trunk]]\nname = \"legacy\"\naddress = \"127.0.0.1:{port}\"\nmwi = true\n"
        ));
    }
    t.push_str(&format!(
        "\n[tenant.dialplan.\"{VM}\"]\nplugin = \"voicemail\"\n\
         [tenant.dialplan.\"{VM}\".config]\n\
         min_length_s = 3\nmax_length_s = 60\nsilence_s = 0\nwelcome_mail = false\n\
         email_mode = \"copy\"\nsubject_template = \"{SUBJECT_TEMPLATE}\"\n\
         [tenant.dialplan.\"{VM}\".config.retention_hours]\nnew = 0\nold = 48\nsaved = 0\ndeleted = 1\n\
         [tenant.dialplan.\"{VM}\".config.mailboxes.102]\npin = \"{PIN}\"\nname = \"Bob\"\n\
         email = \"bob@example.com\"\nannounce = \"number\"\n\
         [tenant.dialplan.\"{VM}\".config.mailboxes.103]\npin = \"{PIN}\"\nannounce = \"number\"\n\
         [tenant.dialplan.\"{VM}\".config.mailboxes.2001]\nannounce = \"none\"\n"
    ));
    s.extra_toml = t;
    s
}

fn set_clock(file: &Path, at: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, at).expect("clock");
    std::fs::rename(&tmp, file).expect("clock");
}

/// A fresh file name in `dir`.
fn file(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("{stem}-{n}.{ext}"))
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// A SIPp `-trace_logs` file's lines (empty if not written).
fn sipp_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The "notify ..." lines of a SIPp log, without the word.
fn notifies(path: &Path) -> Vec<String> {
    sipp_log(path)
        .into_iter()
        .filter_map(|l| l.strip_prefix("notify ").map(str::to_string))
        .collect()
}

/// The Call-IDs of the calls a SIPp run finished ("done CALL-ID").
fn done_calls(path: &Path) -> Vec<String> {
    sipp_log(path)
        .into_iter()
        .filter_map(|l| l.strip_prefix("done ").map(str::to_string))
        .collect()
}

/// The voicemail plugin's recordings on disk.
fn recordings(pbx: &Pbx) -> Vec<PathBuf> {
    let dir = pbx
        .dir
        .path()
        .join("data/recordings")
        .join(DOMAIN)
        .join("voicemail");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits (bounded) until `f` holds; false on timeout.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RTP packets (160 samples each) to play an 8 kHz mono PCM16 WAV file.
fn packets(wav: &[u8]) -> u64 {
    let info = assert_wav(wav, "prompt");
    assert_eq!((info.sample_rate, info.channels, info.bits), (8000, 1, 16));
    ((info.data_bytes / 2) as u64).div_ceil(160)
}

fn prompt_packets(name: &str) -> u64 {
    let p = repo_root().join(format!("prompts/en/{name}.wav"));
    packets(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// The caller's side of a deposit: `0` skips the greeting, then `speech_ms`
/// of speech from 2.5 s (after the beep).
fn skip_and_speak(speech_ms: u64) -> RtpScript {
    RtpScript::new().keys(800, "0").speech(2500, speech_ms)
}

/// [`skip_and_speak`], ended with `#` (the PBX then says goodbye and hangs up).
fn skip_speak_hash(speech_ms: u64) -> RtpScript {
    skip_and_speak(speech_ms).keys(2500 + speech_ms + 200, "#")
}

/// User `from` calls `number` with scenario `sf`, playing `script`, plus
/// `extra` SIPp arguments; bounded by `timeout_s`. Returns SIPp's output and
/// its `-trace_logs` file.
#[allow(clippy::too_many_arguments)]
fn user_call(
    pbx: &Pbx,
    work: &Path,
    sf: &str,
    from: &str,
    number: &str,
    script: &RtpScript,
    extra: &[&str],
    timeout_s: u64,
) -> (Output, PathBuf) {
    let child = user_call_background(pbx, work, sf, from, number, script, extra, timeout_s);
    let log = child.1.clone();
    (
        wait_bounded(child.0, Duration::from_secs(timeout_s + 10)),
        log,
    )
}

#[allow(clippy::too_many_arguments)]
fn user_call_background(
    pbx: &Pbx,
    work: &Path,
    sf: &str,
    from: &str,
    number: &str,
    script: &RtpScript,
    extra: &[&str],
    timeout_s: u64,
) -> (Child, PathBuf) {
    let audio = path_str(&script.write(&file(work, "audio", "pcap")));
    let log = file(work, "caller", "log");
    let log_s = path_str(&log);
    let mut args = vec!["-key", "audio", &audio, "-trace_logs", "-log_file", &log_s];
    if !extra.contains(&"-m") {
        args.extend(["-m", "1"]);
    }
    args.extend_from_slice(extra);
    let pw = format!("pw{from}");
    let child = calls_in_background(pbx, DOMAIN, sf, (from, &pw), number, &args, timeout_s);
    (child, log)
}

/// A caller leaves `speech_ms` of speech (greeting skipped) for `number` and
/// hangs up 0.7 s after it.
fn deposit(pbx: &Pbx, work: &Path, from: &str, number: &str, speech_ms: u64) {
    let hold = (2500 + speech_ms + 700).to_string();
    let (out, _) = user_call(
        pbx,
        work,
        "vm_deposit.xml",
        from,
        number,
        &skip_and_speak(speech_ms),
        &["-set", "hold", &hold],
        30 + speech_ms / 1000,
    );
    assert!(
        out.status.success(),
        "deposit {from} -> {number}: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
}

/// The owner `user` calls voicemail from their phone: PIN + `#` at 1.5 s,
/// then `keys` (at their times), the PBX ends the call.
fn owner_session(pbx: &Pbx, work: &Path, user: &str, keys: &[(u64, &str)]) {
    let mut script = RtpScript::new().keys(1500, &format!("{PIN}#"));
    for (at, k) in keys {
        script = script.keys(*at, k);
    }
    let (out, _) = user_call(pbx, work, "vm_call.xml", user, VM, &script, &[], 90);
    assert!(
        out.status.success(),
        "owner {user} at the voicemail: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
}

/// An RFC 3842 subscriber for `user`'s own mailbox (see vm_subscribe.xml),
/// started and given time for its first NOTIFY. Returns SIPp and its log.
fn subscriber(pbx: &Pbx, work: &Path, user: &str, first: &str, want: &str) -> (Child, PathBuf) {
    let log = file(work, "subscriber", "log");
    let pw = format!("pw{user}");
    let child = sipp_spawn(
        "vm_subscribe.xml",
        pbx.udp,
        &[
            "-s",
            user,
            "-au",
            user,
            "-ap",
            &pw,
            "-set",
            "first",
            first,
            "-set",
            "want",
            want,
            "-m",
            "1",
            "-trace_logs",
            "-log_file",
            &path_str(&log),
            "-timeout",
            "150s",
            "-timeout_error",
        ],
    );
    let ok = wait_until(Duration::from_secs(10), || !notifies(&log).is_empty());
    assert!(
        ok,
        "no first NOTIFY for {user} within 10 s\nlog:\n{}",
        pbx.log()
    );
    (child, log)
}

/// The current message-waiting counts of `user` ("new/old"), fetched with a
/// SUBSCRIBE Expires: 0.
fn mwi_fetch(pbx: &Pbx, work: &Path, user: &str) -> String {
    let log = file(work, "fetch", "log");
    let pw = format!("pw{user}");
    let out = wait_bounded(
        sipp_spawn(
            "vm_mwi_fetch.xml",
            pbx.udp,
            &[
                "-s",
                user,
                "-au",
                user,
                "-ap",
                &pw,
                "-m",
                "1",
                "-trace_logs",
                "-log_file",
                &path_str(&log),
                "-timeout",
                "20s",
                "-timeout_error",
            ],
        ),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "MWI fetch for {user}: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let n = notifies(&log);
    let line = n
        .first()
        .unwrap_or_else(|| panic!("no NOTIFY logged: {n:?}"));
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A phone of `user` registered at a fresh port that answers `count`
/// unsolicited NOTIFYs (vm_notify_uas.xml), at most `timeout_s`.
fn phone(pbx: &Pbx, work: &Path, user: &str, count: u32, timeout_s: u64) -> (Child, PathBuf) {
    let port = free_udp_port();
    register_at(pbx, user, port);
    let log = file(work, "phone", "log");
    let p = port.to_string();
    let m = count.to_string();
    let limit = format!("{timeout_s}s");
    let child = sipp_spawn(
        "vm_notify_uas.xml",
        pbx.udp,
        &[
            "-p",
            &p,
            "-m",
            &m,
            "-trace_logs",
            "-log_file",
            &path_str(&log),
            "-timeout",
            &limit,
            "-timeout_error",
        ],
    );
    (child, log)
}

/// A call from the peer PBX (trunk port `trunk`) to voicemail, diverted from
/// `from_number` for `reason`, by caller 5550100, playing `script`; the
/// trunk's NOTIFYs are answered and logged on the same port. Ends when the
/// PBX hangs up (vm_trunk_call.xml). Returns SIPp's output and log.
fn trunk_call(
    pbx: &Pbx,
    work: &Path,
    trunk: u16,
    from_number: &str,
    reason: &str,
    script: &RtpScript,
) -> (Output, PathBuf) {
    let csv = file(work, "trunk", "csv");
    std::fs::write(
        &csv,
        format!("SEQUENTIAL\n{from_number};{reason};5550100\n"),
    )
    .expect("csv");
    let audio = path_str(&script.write(&file(work, "audio", "pcap")));
    let log = file(work, "trunk", "log");
    let mp = free_udp_port().to_string();
    let p = trunk.to_string();
    let ooc = path_str(&scenario("vm_notify_uas.xml"));
    let child = sipp_spawn(
        "vm_trunk_call.xml",
        pbx.udp,
        &[
            "-p",
            &p,
            "-mp",
            &mp,
            "-s",
            VM,
            "-inf",
            &path_str(&csv),
            "-key",
            "audio",
            &audio,
            "-oocsf",
            &ooc,
            "-m",
            "1",
            "-trace_logs",
            "-log_file",
            &path_str(&log),
            "-timeout",
            "60s",
            "-timeout_error",
        ],
    );
    (wait_bounded(child, Duration::from_secs(70)), log)
}

/// The subject of 101's message of `duration_ms` to 102 (Bob) at T0, 10:15
/// in Europe/Berlin.
fn expect_subject(duration_ms: u64) -> String {
    let s = duration_ms.div_ceil(1000);
    format!(
        "Voicemail for Bob (102) from 101, {}:{:02}, 2027-03-02 10:15",
        s / 60,
        s % 60
    )
}

/// a) A call to 102 (do not disturb, busy → voicemail) leaves a 4 s message:
/// the mail reaches aiosmtpd with the recording attached (a valid WAV of the
/// recorded length, byte-identical to the stored recording) and the subject
/// rendered from the template in the tenant's time zone; the subscriber sees
/// 0/0 then 1/0 and the registered phone an unsolicited NOTIFY 1/0.
#[test]
fn a_forwarded_call_leaves_a_message_that_is_mailed_and_lights_the_lamp() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, T0);
    let smtp = Smtp::start();
    let pbx = Pbx::start(&setup(&Opts {
        smtp_port: smtp.port(),
        clock: Some(clock),
        ..Opts::default()
    }));
    let (phone, phone_log) = phone(&pbx, w, "102", 1, 60);
    let (sub, sub_log) = subscriber(&pbx, w, "102", "0/0", "1/0");

    deposit(&pbx, w, "101", "102", 4000);

    let mails = smtp.wait_mails(1, Duration::from_secs(30));
    assert_eq!(mails.len(), 1, "mails: {mails:#?}\nlog:\n{}", pbx.log());
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["bob@example.com"], "{mail:#?}");
    assert_eq!(mail.header("X-MailFrom"), Some(&*format!("vm@{DOMAIN}")));
    assert_eq!(mail.attachments.len(), 1, "{mail:#?}");
    let att = &mail.attachments[0];
    assert_eq!(att.filename, "message.wav");
    assert_eq!(att.content_type, "audio/wav");
    let info = assert_wav(&att.data, "the mailed message");
    assert_eq!((info.sample_rate, info.channels, info.bits), (8000, 1, 16));
    assert!(
        info.duration_ms.abs_diff(4000) <= 300,
        "the message is {} ms, 4000 spoken",
        info.duration_ms
    );
    assert_eq!(mail.subject, expect_subject(info.duration_ms));
    assert!(mail.text.contains("Bob (102)"), "{}", mail.text);
    let stored = recordings(&pbx);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        std::fs::read(&stored[0]).expect("recording"),
        att.data,
        "the attachment is the stored recording"
    );

    let sub_out = wait_bounded(sub, Duration::from_secs(30));
    assert!(
        sub_out.status.success(),
        "subscriber: {}\n{:?}\nlog:\n{}",
        describe(&sub_out),
        sipp_log(&sub_log),
        pbx.log()
    );
    let seen: Vec<String> = notifies(&sub_log)
        .iter()
        .map(|n| n.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        seen,
        ["0/0 active", "1/0 active", "1/0 terminated"],
        "{:?}",
        sipp_log(&sub_log)
    );
    let phone_out = wait_bounded(phone, Duration::from_secs(30));
    assert!(
        phone_out.status.success(),
        "phone: {}\nlog:\n{}",
        describe(&phone_out),
        pbx.log()
    );
    assert_eq!(notifies(&phone_log), ["1/0 (0/0) 102"]);
    let cdrs = pbx.wait_cdrs(1, Duration::from_secs(10));
    let cdr = cdrs.last().expect("the deposit's CDR");
    assert_eq!(cdr["plugin"], "voicemail", "{cdr}");
    assert_eq!(cdr["to"], "102", "{cdr}");
    assert_eq!(
        cdr["forwarded"], "busy:800",
        "do not disturb → busy rule: {cdr}"
    );
    eprintln!("deposit CDR: {cdr}");
}

/// b) The owner of 103 (no answer → voicemail) gets two messages, logs in
/// from their phone with the PIN over RFC 4733, plays the first (new → old:
/// 1/1), deletes it (1/0), plays the second (0/1) and hangs up. With the
/// controlled clock 2 h later the next call purges the deleted message
/// (`retention_hours.deleted = 1`) and its recording; 50 h later the old one
/// (`retention_hours.old = 48`): MWI 0/0, no recording left.
#[test]
fn owner_listens_deletes_and_retention_purges_on_the_controlled_clock() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, T0);
    let smtp = Smtp::start();
    let pbx = Pbx::start(&setup(&Opts {
        smtp_port: smtp.port(),
        clock: Some(clock.clone()),
        ..Opts::default()
    }));
    deposit(&pbx, w, "101", "103", 3500);
    deposit(&pbx, w, "104", "103", 3500);
    assert_eq!(recordings(&pbx).len(), 2, "log:\n{}", pbx.log());
    assert_eq!(mwi_fetch(&pbx, w, "103"), "2/0");

    let (sub, sub_log) = subscriber(&pbx, w, "103", "2/0", "0/1");
    // PIN, 1 (first message), 7 while it plays (delete; the second plays),
    // # later (the second is played or interrupted: old either way).
    owner_session(&pbx, w, "103", &[(4500, "1"), (8500, "7"), (20000, "#")]);
    let sub_out = wait_bounded(sub, Duration::from_secs(30));
    assert!(
        sub_out.status.success(),
        "subscriber: {}\n{:?}\nlog:\n{}",
        describe(&sub_out),
        sipp_log(&sub_log),
        pbx.log()
    );
    let seen: Vec<String> = notifies(&sub_log)
        .iter()
        .filter_map(|n| n.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(
        seen,
        ["2/0", "1/1", "1/0", "0/1", "0/1"],
        "played → old, deleted → not counted, played → old"
    );
    assert_eq!(recordings(&pbx).len(), 2, "deleted, not purged yet");

    // 2 h later: the deleted message goes with the next call into the mailbox.
    set_clock(&clock, "2027-03-02T11:15:00Z");
    owner_session(&pbx, w, "103", &[(4500, "#")]);
    assert!(
        wait_until(Duration::from_secs(5), || recordings(&pbx).len() == 1),
        "the deleted message's recording is purged: {:?}\nlog:\n{}",
        recordings(&pbx),
        pbx.log()
    );
    assert!(
        pbx.log().contains("(deleted) purged"),
        "log:\n{}",
        pbx.log()
    );
    assert_eq!(mwi_fetch(&pbx, w, "103"), "0/1");

    // 50 h after it was played: the old message goes too; the lamp goes off.
    set_clock(&clock, "2027-03-04T11:30:00Z");
    let (sub, sub_log) = subscriber(&pbx, w, "103", "0/1", "0/0");
    owner_session(&pbx, w, "103", &[(4500, "#")]);
    let sub_out = wait_bounded(sub, Duration::from_secs(30));
    assert!(
        sub_out.status.success(),
        "subscriber: {}\n{:?}\nlog:\n{}",
        describe(&sub_out),
        sipp_log(&sub_log),
        pbx.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || recordings(&pbx).is_empty()),
        "every recording purged: {:?}",
        recordings(&pbx)
    );
    assert!(pbx.log().contains("(old) purged"), "log:\n{}", pbx.log());
    assert_eq!(mwi_fetch(&pbx, w, "103"), "0/0");
    assert!(smtp.mails().is_empty(), "103 has no mail address");
}

/// c) A 1 s message (`min_length_s = 3`) is discarded: no recording, no mail,
/// no NOTIFY. Then a 3.5 s message on the same setup does all three.
#[test]
fn a_message_shorter_than_the_minimum_leaves_no_trace() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, T0);
    let smtp = Smtp::start();
    let pbx = Pbx::start(&setup(&Opts {
        smtp_port: smtp.port(),
        clock: Some(clock),
        ..Opts::default()
    }));
    let (phone, phone_log) = phone(&pbx, w, "102", 1, 90);

    let (out, _) = user_call(
        &pbx,
        w,
        "vm_call.xml",
        "101",
        "102",
        &skip_speak_hash(1000),
        &[],
        40,
    );
    assert!(
        out.status.success(),
        "short deposit: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let log = pbx.log();
    assert!(log.contains("shorter than"), "log:\n{log}");
    assert!(recordings(&pbx).is_empty(), "{:?}", recordings(&pbx));
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());
    assert!(
        notifies(&phone_log).is_empty(),
        "{:?}",
        sipp_log(&phone_log)
    );
    assert!(!log.contains("message waiting changed"), "log:\n{log}");

    // The control: long enough.
    deposit(&pbx, w, "101", "102", 3500);
    let phone_out = wait_bounded(phone, Duration::from_secs(30));
    assert!(
        phone_out.status.success(),
        "phone: {}\nlog:\n{}",
        describe(&phone_out),
        pbx.log()
    );
    assert_eq!(notifies(&phone_log), ["1/0 (0/0) 102"]);
    assert_eq!(recordings(&pbx).len(), 1);
    assert_eq!(smtp.wait_mails(1, Duration::from_secs(30)).len(), 1);
}

/// d) The peer PBX (trunk) sends a call for its user 2001 with `Diversion:
/// ...;reason=user-busy`: the caller hears the busy greeting (the CDR's
/// packet count is the stock `busy` prompt, the beep, "recorded" and
/// "goodbye": the not-available greeting is 2.3 s longer), the message lands
/// in mailbox 2001, and the trunk gets a NOTIFY 1/0 for account 2001.
#[test]
fn a_trunk_call_diverted_on_busy_gets_the_busy_greeting_and_notifies_the_peer() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, T0);
    let smtp = Smtp::start();
    let trunk = free_udp_port();
    let pbx = Pbx::start(&setup(&Opts {
        smtp_port: smtp.port(),
        clock: Some(clock),
        trunk: Some(trunk),
        ..Opts::default()
    }));
    // No key: the whole greeting plays (under 5 s for busy, 7 s for
    // not-available), then the beep; speech from 8 s, # after it.
    let script = RtpScript::new().speech(8000, 3000).keys(11200, "#");
    let (out, log) = trunk_call(&pbx, w, trunk, "2001", "user-busy", &script);
    assert!(
        out.status.success(),
        "trunk call: {}\n{:?}\nlog:\n{}",
        describe(&out),
        sipp_log(&log),
        pbx.log()
    );
    assert_eq!(
        notifies(&log),
        ["1/0 (0/0) 2001"],
        "{:?}\nlog:\n{}",
        sipp_log(&log),
        pbx.log()
    );
    let stored = recordings(&pbx);
    assert_eq!(stored.len(), 1, "{stored:?}\nlog:\n{}", pbx.log());
    let info = assert_wav(&std::fs::read(&stored[0]).expect("recording"), "message");
    assert!(info.duration_ms.abs_diff(3000) <= 300, "{info:?}");

    let cdr = pbx
        .wait_cdrs(1, Duration::from_secs(10))
        .pop()
        .expect("the trunk call's CDR");
    assert_eq!(cdr["plugin"], "voicemail", "{cdr}");
    let sent = cdr["rtp_a_tx"].as_u64().unwrap_or(0);
    let busy = prompt_packets("busy")
        + prompt_packets("beep")
        + prompt_packets("vm/message-recorded")
        + prompt_packets("goodbye");
    let unavailable = busy - prompt_packets("busy") + prompt_packets("not-available");
    eprintln!("caller was sent {sent} packets; busy path {busy}, not-available path {unavailable}");
    assert!(
        sent.abs_diff(busy) <= 8,
        "the caller was sent {sent} packets: the busy greeting path is {busy}, \
         the not-available one {unavailable}\n{cdr}"
    );
    assert!(smtp.mails().is_empty(), "2001 has no mail address");
}

/// e) The directory: slapd has Alice (`+49 8142 4799-123`, ou=people) and
/// Mallory (ou=other, outside the search base). A trunk call diverted from
/// `0049-81424799123` finds Alice's entry: the message goes to mailbox 123
/// (her extension), the mail to her directory address, the NOTIFY for 123
/// to the trunk. Mallory's number is not served.
#[test]
fn the_directory_serves_mailboxes_by_any_number_form_within_its_base() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, T0);
    let ldap = Ldap::start(
        &[
            ldap_person(
                LDAP_PEOPLE,
                "alice",
                "Alice Liddell",
                "+49 8142 4799-123",
                Some("alice@example.com"),
            ),
            ldap_person(
                LDAP_OTHER,
                "mallory",
                "Mallory Hidden",
                "+49 8142 4799-199",
                Some("mallory@example.com"),
            ),
        ]
        .join("\n"),
    );
    let smtp = Smtp::start();
    let trunk = free_udp_port();
    let pbx = Pbx::start(&setup(&Opts {
        smtp_port: smtp.port(),
        clock: Some(clock),
        trunk: Some(trunk),
        ldap: Some(ldap.url().to_string()),
    }));

    let (out, log) = trunk_call(
        &pbx,
        w,
        trunk,
        "0049-81424799123",
        "no-answer",
        &skip_speak_hash(3000),
    );
    assert!(
        out.status.success(),
        "trunk call for Alice: {}\n{:?}\nlog:\n{}\nslapd:\n{}",
        describe(&out),
        sipp_log(&log),
        pbx.log(),
        ldap.log()
    );
    let mails = smtp.wait_mails(1, Duration::from_secs(30));
    assert_eq!(mails.len(), 1, "{mails:#?}\nlog:\n{}", pbx.log());
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["alice@example.com"], "{mail:#?}");
    let info = assert_wav(&mail.attachments[0].data, "Alice's message");
    assert!(info.duration_ms.abs_diff(3000) <= 300, "{info:?}");
    let s = info.duration_ms.div_ceil(1000);
    assert_eq!(
        mail.subject,
        format!("Voicemail for Alice Liddell (123) from 5550100, 0:{s:02}, 2027-03-02 10:15"),
        "the directory's name, the extension as mailbox"
    );
    assert_eq!(notifies(&log), ["1/0 (0/0) 123"], "{:?}", sipp_log(&log));

    // Mallory: outside the search base, no any_mailbox: refused.
    let (out, log) = trunk_call(
        &pbx,
        w,
        trunk,
        "0049-81424799199",
        "no-answer",
        &skip_speak_hash(3000),
    );
    eprintln!("Mallory's call: {}", describe(&out));
    assert!(
        wait_until(Duration::from_secs(5), || pbx
            .log()
            .contains("no mailbox for 0049-81424799199")),
        "log:\n{}",
        pbx.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.mails().len(), 1, "{:#?}", smtp.mails());
    assert!(notifies(&log).is_empty(), "{:?}", sipp_log(&log));
    assert_eq!(recordings(&pbx).len(), 1);
}

/// f) Durability: 20 deposits into 102 start 0.5 s apart while the SMTP
/// server is down; the PBX is SIGKILLed once three calls have ended (about
/// 10 s in: the others in flight) and restarted. Every call SIPp saw finish (its message stored
/// before the goodbye) is counted in the mailbox, every recording on disk is
/// a valid WAV, and once the SMTP server is up the queued mails arrive.
#[test]
fn messages_and_queued_mails_survive_a_sigkill() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    // Real time (no test clock): message ids are arrival times in ms.
    let smtp_port = free_tcp_port();
    let mut pbx = Pbx::start(&setup(&Opts {
        smtp_port,
        ..Opts::default()
    }));
    let calls = 20;
    let (sipp, log) = user_call_background(
        &pbx,
        w,
        "vm_call.xml",
        "101",
        "102",
        &skip_speak_hash(3000),
        &["-m", "20", "-l", "20", "-r", "2", "-rp", "1000"],
        45,
    );
    // The first calls end about 10 s in (CDRs), the last starts at 9.5 s.
    let ended = wait_until(Duration::from_secs(40), || pbx.cdrs().len() >= 3);
    assert!(ended, "no call ended\nlog:\n{}", pbx.log());
    let before = pbx.log();
    pbx.crash_and_restart();
    let out = wait_bounded(sipp, Duration::from_secs(60));
    let finished = done_calls(&log);
    eprintln!(
        "{} of {calls} calls finished before the SIGKILL; SIPp: {}",
        finished.len(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Successful call") || l.contains("Failed call"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(
        !finished.is_empty() && finished.len() < calls,
        "the crash must fall between finished and running calls: {} finished\nlog before:\n{before}",
        finished.len()
    );

    let stored = recordings(&pbx);
    for r in &stored {
        let info = assert_wav(
            &std::fs::read(r).expect("recording"),
            &r.display().to_string(),
        );
        assert_eq!(info.sample_rate, 8000);
    }
    // The owner's login recounts the mailbox (retention + MWI), then fetch.
    owner_session(&pbx, w, "102", &[(4500, "#")]);
    let counts = mwi_fetch(&pbx, w, "102");
    let new: usize = counts
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("counts {counts}"));
    eprintln!(
        "after the restart: {new} messages, {} recordings on disk",
        stored.len()
    );
    assert!(
        new >= finished.len(),
        "{new} messages but {} calls finished\nlog:\n{}",
        finished.len(),
        pbx.log()
    );
    assert!(
        new <= stored.len() && new <= calls,
        "{new} messages, {stored:?}"
    );

    // The mail server comes up: every queued mail arrives.
    let smtp = Smtp::start_on(smtp_port);
    let mails = smtp.wait_mails(new, Duration::from_secs(120));
    assert!(
        mails.len() >= finished.len() && mails.len() <= new,
        "{} mails for {new} messages ({} calls finished)\nlog:\n{}",
        mails.len(),
        finished.len(),
        pbx.log()
    );
    for m in &mails {
        assert_eq!(m.rcpt_to, ["bob@example.com"]);
        let info = assert_wav(&m.attachments[0].data, "a queued mail's message");
        assert!(info.duration_ms.abs_diff(3000) <= 300, "{info:?}");
    }
    eprintln!("{} mails delivered after the restart", mails.len());
}

/// Two deposits into one mailbox that end at the same moment (the
/// controlled clock stands still, as two real calls can end in the same
/// millisecond): both messages must be kept.
///
/// (A message id that was only the time, checked free with a kv get and
/// written later, let the second deposit overwrite the first; ids now carry
/// the deposit's own recording id.)
#[test]
fn simultaneous_deposits_into_one_mailbox_keep_both_messages() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let clock = w.join("clock");
    set_clock(&clock, T0);
    let smtp = Smtp::start();
    let pbx = Pbx::start(&setup(&Opts {
        smtp_port: smtp.port(),
        clock: Some(clock),
        ..Opts::default()
    }));
    let (out, log) = user_call(
        &pbx,
        w,
        "vm_call.xml",
        "101",
        "102",
        &skip_speak_hash(3000),
        &["-m", "2", "-l", "2", "-r", "1000"],
        40,
    );
    assert!(
        out.status.success() && done_calls(&log).len() == 2,
        "two deposits: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    assert_eq!(recordings(&pbx).len(), 2);
    assert_eq!(smtp.wait_mails(2, Duration::from_secs(30)).len(), 2);
    let counts = mwi_fetch(&pbx, w, "102");
    let stored: Vec<String> = pbx
        .log()
        .lines()
        .filter(|l| l.contains("mailbox 102: message"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        counts,
        "2/0",
        "both messages counted:\n{}",
        stored.join("\n")
    );
}
