//! The demo attendant end to end: a SIPp caller keys an extension with RFC 4733
//! DTMF, the dialled SIPp callee rings but does not answer, the caller leaves a
//! message that is stored with the right length, and the callee plays it back
//! through the mailbox feature code.

use std::time::Duration;

use plugboard_e2e::{
    DOMAIN, Pbx, Setup, call, describe, free_udp_port, plugin_wasm, register_at, sipp_spawn,
    wait_bounded,
};

fn setup() -> Setup {
    let mut s = Setup::default();
    s.plugins
        .push(("attendant".into(), plugin_wasm("attendant")));
    s.plugin_grants
        .push(("attendant".into(), vec!["kv".into()]));
    s.dialplan = vec![
        r#""100" = { plugin = "attendant", config = { ring_timeout_s = 3, max_message_s = 3 } }"#
            .into(),
        r#""*98" = { plugin = "attendant", config = { mode = "mailbox" } }"#.into(),
    ];
    s
}

fn caller(pbx: &Pbx, scenario: &str, from: &str, number: &str) -> std::process::Output {
    call(pbx, scenario, from, number, 60)
}

/// Duration of an 8 kHz mono PCM16 WAV file, in ms.
fn wav_ms(bytes: &[u8]) -> u64 {
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let channels = u16::from_le_bytes([bytes[22], bytes[23]]);
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let bits = u16::from_le_bytes([bytes[34], bytes[35]]);
    assert_eq!((channels, rate, bits), (1, 8000, 16));
    // Find the data chunk.
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]]) as usize;
        if &bytes[i..i + 4] == b"data" {
            return (len as u64 / 2) * 1000 / 8000;
        }
        i += 8 + len;
    }
    panic!("no data chunk");
}

#[test]
fn dtmf_selects_the_extension_and_an_unanswered_call_leaves_a_message() {
    let pbx = Pbx::start(&setup());
    let port = free_udp_port();
    register_at(&pbx, "102", port);
    // 102 rings and must see the CANCEL when the attendant gives up after 3 s.
    let p = port.to_string();
    let mp = free_udp_port().to_string();
    let callee = sipp_spawn(
        "uas_cancelled.xml",
        pbx.udp,
        &[
            "-p",
            &p,
            "-mp",
            &mp,
            "-m",
            "1",
            "-timeout",
            "40s",
            "-timeout_error",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));

    let out = caller(&pbx, "uac_attendant.xml", "101", "100");
    assert!(
        out.status.success(),
        "caller: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let cout = wait_bounded(callee, Duration::from_secs(10));
    assert!(
        cout.status.success(),
        "the dialled extension did not ring: {}\nlog:\n{}",
        describe(&cout),
        pbx.log()
    );

    // The message: one WAV of the configured 3 s maximum.
    let dir = pbx
        .dir
        .path()
        .join("data/recordings")
        .join(DOMAIN)
        .join("attendant");
    let wavs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}\nlog:\n{}", dir.display(), pbx.log()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    assert_eq!(wavs.len(), 1, "recordings: {wavs:?}\nlog:\n{}", pbx.log());
    let ms = wav_ms(&std::fs::read(&wavs[0]).expect("read wav"));
    assert!(
        (2800..=3100).contains(&ms),
        "recording is {ms} ms, expected about 3000"
    );
    let log = pbx.log();
    assert!(
        log.contains("dialling extension 102"),
        "DTMF 1 0 2 # did not select 102:\n{log}"
    );

    // 102 listens to it through *98: intro, "message from 1 0 1", the 3 s
    // recording and the menu prompt are far more audio than "no messages".
    let out = caller(&pbx, "uac_gets_bye.xml", "102", "*98");
    assert!(
        out.status.success(),
        "mailbox: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let cdrs = pbx.wait_cdrs(2, Duration::from_secs(5));
    let cdr = cdrs.last().expect("mailbox CDR");
    let sent = cdr["rtp_a_tx"].as_u64().unwrap_or(0);
    assert!(sent >= 400, "mailbox played only {sent} packets: {cdr}");
}
