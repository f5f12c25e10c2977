//! Tenant prompt overrides and the language fallback chain, end to end: the
//! `echo-info` test guest plays stock `beep` and then stock `goodbye`; the
//! tenant admin uploads, replaces and removes overrides of `goodbye` through
//! the admin API and the CLI while the PBX keeps running, and each call's CDR
//! shows what was played: `rtp_a_tx` counts the 20 ms packets sent to the
//! caller, one per 160 samples of audio. The stock `goodbye` is about 2 s
//! (103 packets), the overrides are generated tones of 1 s (50) and 0.5 s (25),
//! so a call that ignored an override (or played the wrong one) would show a
//! different count.
//!
//! Needs `cargo build --release -p plugboard` and `scripts/build-plugins.sh`.

use std::path::Path;
use std::time::Duration;

use plugboard_e2e::{
    DOMAIN, OPERATOR_TOKEN, Pbx, Setup, call_in, describe, plugin_wasm, repo_root, tenant_token,
};
use serde_json::json;

/// A second tenant: language `de`, then `fr`, then (always) `en`. The stock
/// prompts exist only in `en`.
const DE: &str = "de.plugboard.test";

/// The number of the echo-info plugin in both tenants.
const NUMBER: &str = "300";

fn setup() -> Setup {
    let mut s = Setup::default();
    s.plugins
        .push(("echo-info".into(), plugin_wasm("echo-info")));
    s.plugin_grants
        .push(("echo-info".into(), vec!["kv".into()]));
    s.dialplan =
        vec![r#""300" = { plugin = "echo-info", config = { greeting = "goodbye" } }"#.into()];
    s.admin = vec![DOMAIN.into(), DE.into()];
    s.extra_toml = format!(
        "[[tenant]]\ndomain = \"{DE}\"\nlanguage = \"de\"\nlanguage_fallback = [\"fr\"]\n\
         [[tenant.user]]\nextension = \"201\"\npassword = \"pw201\"\n\
         [tenant.dialplan]\n\
         \"300\" = {{ plugin = \"echo-info\", config = {{ greeting = \"goodbye\" }} }}\n"
    );
    s
}

/// A WAV file: 16-bit PCM, `rate` Hz, `channels` channels, `ms` of a 1 kHz tone.
fn tone_wav(ms: u32, rate: u32, channels: u16) -> Vec<u8> {
    let frames = (rate as u64 * ms as u64 / 1000) as usize;
    let mut data = Vec::with_capacity(frames * 2 * channels as usize);
    for i in 0..frames {
        let t = i as f64 / rate as f64;
        let s = ((t * 1000.0 * 2.0 * std::f64::consts::PI).sin() * 12000.0) as i16;
        for _ in 0..channels {
            data.extend_from_slice(&s.to_le_bytes());
        }
    }
    let block_align = 2 * channels;
    let mut w = Vec::with_capacity(44 + data.len());
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&channels.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    w.extend_from_slice(&block_align.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RTP packets needed to play an 8 kHz mono PCM16 WAV file (160 samples each).
fn packets(wav: &[u8]) -> u64 {
    assert_eq!(&wav[0..4], b"RIFF");
    let mut i = 12;
    while i + 8 <= wav.len() {
        let len = u32::from_le_bytes([wav[i + 4], wav[i + 5], wav[i + 6], wav[i + 7]]) as usize;
        if &wav[i..i + 4] == b"data" {
            return ((len / 2) as u64).div_ceil(160);
        }
        i += 8 + len + (len & 1);
    }
    panic!("no data chunk");
}

fn stock_packets(name: &str) -> u64 {
    let p = repo_root().join(format!("prompts/en/{name}.wav"));
    packets(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Caller `from` (password `pw<from>`) of tenant `domain` calls echo-info;
/// returns the packets the caller was sent, from the call's CDR (the `n`th).
fn call_and_count(pbx: &Pbx, domain: &str, from: &str, n: usize) -> u64 {
    let pw = format!("pw{from}");
    let out = call_in(pbx, domain, "uac_gets_bye.xml", (from, &pw), NUMBER, 30);
    assert!(
        out.status.success(),
        "call {NUMBER} in {domain}: {}\nlog:\n{}",
        describe(&out),
        pbx.log()
    );
    let cdrs = pbx.wait_cdrs(n, Duration::from_secs(10));
    assert!(cdrs.len() >= n, "expected {n} CDRs: {cdrs:?}");
    let cdr = &cdrs[n - 1];
    assert_eq!(cdr["tenant"], domain, "{cdr}");
    assert_eq!(cdr["plugin"], "echo-info", "{cdr}");
    // A missing prompt would fail the plugin (and play the error prompt).
    assert_eq!(
        cdr["disposition"],
        "completed",
        "{cdr}\nlog:\n{}",
        pbx.log()
    );
    cdr["rtp_a_tx"].as_u64().unwrap_or(0)
}

/// Asserts that a call sent `beep` and then a greeting of `greeting` packets.
fn assert_heard(sent: u64, greeting: u64, what: &str) {
    let want = stock_packets("beep") + greeting;
    assert!(
        sent.abs_diff(want) <= 3,
        "{what}: the caller was sent {sent} RTP packets, expected {want} \
         (beep + a greeting of {greeting} packets)"
    );
}

fn upload(
    pbx: &Pbx,
    token: &str,
    domain: &str,
    lang: &str,
    wav: &[u8],
) -> (u16, serde_json::Value) {
    pbx.api(
        "PUT",
        &format!("/v1/tenants/{domain}/prompts/{lang}/goodbye"),
        token,
        Some(&json!({"wav": base64(wav)})),
    )
}

fn delete(pbx: &Pbx, token: &str, domain: &str, lang: &str) -> (u16, serde_json::Value) {
    pbx.api(
        "DELETE",
        &format!("/v1/tenants/{domain}/prompts/{lang}/goodbye"),
        token,
        None,
    )
}

#[test]
fn overrides_replace_stock_prompts_and_fall_back_when_removed_without_a_restart() {
    let pbx = Pbx::start(&setup());
    let own = tenant_token(DOMAIN);
    let de_admin = tenant_token(DE);
    let stock = stock_packets("goodbye");
    let one_s = tone_wav(1000, 8000, 1);
    let half_s = tone_wav(500, 8000, 1);
    let (p1, p05) = (packets(&one_s), packets(&half_s));
    assert_eq!((p1, p05), (50, 25));
    assert!(stock.abs_diff(p1) > 20, "stock goodbye is {stock} packets");
    let mut n = 0;
    let mut call = |domain: &str, from: &str| {
        n += 1;
        call_and_count(&pbx, domain, from, n)
    };

    // 1. The stock prompt.
    assert_heard(call(DOMAIN, "101"), stock, "before any override");

    // 2. The tenant admin uploads an `en` override with the CLI (and a `de`
    //    one, which this `en` tenant must not hear): the next call plays it.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("goodbye-1s.wav");
    std::fs::write(&file, &one_s).expect("write wav");
    let out = pbx.cli(
        &own,
        &[
            "prompt",
            "upload",
            DOMAIN,
            "en",
            "goodbye",
            file.to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.status.success(), "prompt upload: {}", describe(&out));
    let stored: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        stored,
        json!({"language": "en", "name": "goodbye", "size_bytes": one_s.len(), "duration_ms": 1000})
    );
    let (status, body) = upload(&pbx, &own, DOMAIN, "de", &half_s);
    assert_eq!(status, 200, "{body}");
    assert_heard(call(DOMAIN, "101"), p1, "with the en override");
    let out = pbx.cli(&own, &["prompt", "list", DOMAIN]);
    assert!(out.status.success(), "prompt list: {}", describe(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        list,
        json!([
            {"language": "de", "name": "goodbye", "size_bytes": half_s.len(), "duration_ms": 500},
            {"language": "en", "name": "goodbye", "size_bytes": one_s.len(), "duration_ms": 1000},
        ])
    );
    assert!(
        Path::new(
            &pbx.dir
                .path()
                .join(format!("data/tenants/{DOMAIN}/prompts/en/goodbye.wav"))
        )
        .is_file()
    );

    // 3. Removed: the stock prompt plays again.
    let out = pbx.cli(&own, &["prompt", "delete", DOMAIN, "en", "goodbye"]);
    assert!(out.status.success(), "prompt delete: {}", describe(&out));
    assert_heard(call(DOMAIN, "101"), stock, "after removing the override");
    let (status, body) = delete(&pbx, &own, DOMAIN, "en");
    assert_eq!(status, 404, "{body}");

    // 4. The fallback chain of tenant DE (de, fr, en): no de or fr prompt
    //    anywhere, so the en stock prompt; the other tenant's de override is
    //    not its own.
    assert_heard(call(DE, "201"), stock, "de tenant, no overrides");
    // An fr override is the next language of the chain ...
    let (status, body) = upload(&pbx, &de_admin, DE, "fr", &one_s);
    assert_eq!(status, 200, "{body}");
    assert_heard(call(DE, "201"), p1, "de tenant, fr override");
    // ... and a de override ranks above it.
    let (status, body) = upload(&pbx, &de_admin, DE, "de", &half_s);
    assert_eq!(status, 200, "{body}");
    assert_heard(call(DE, "201"), p05, "de tenant, de and fr overrides");
    // Removing both falls back down the chain to the stock prompt.
    assert_eq!(delete(&pbx, &de_admin, DE, "de").0, 204);
    assert_eq!(delete(&pbx, &de_admin, DE, "fr").0, 204);
    assert_heard(call(DE, "201"), stock, "de tenant, overrides removed");

    let mut pbx = pbx;
    assert!(pbx.alive(), "the PBX ran throughout");
}

#[test]
fn bad_files_names_and_other_tenants_are_refused() {
    let pbx = Pbx::start(&setup());
    let own = tenant_token(DOMAIN);
    let one_s = tone_wav(1000, 8000, 1);

    // CD-quality stereo: 400 naming what is wrong.
    let (status, body) = upload(&pbx, &own, DOMAIN, "en", &tone_wav(200, 44100, 2));
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        message.contains("44100 Hz stereo") && message.contains("need 8000 Hz mono"),
        "{message}"
    );
    // Not a WAV at all.
    let (status, body) = upload(&pbx, &own, DOMAIN, "en", b"hello, not a wav file");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a valid WAV")),
        "{body}"
    );
    // Names and languages that could leave the prompt folder.
    for path in [
        "/v1/tenants/{d}/prompts/en/%2E%2E",
        "/v1/tenants/{d}/prompts/en/..%2F..%2Fx",
        "/v1/tenants/{d}/prompts/en/%2Fetc%2Fx",
        "/v1/tenants/{d}/prompts/%2E%2E/goodbye",
        "/v1/tenants/{d}/prompts/en%2F..%2Fde/goodbye",
        "/v1/tenants/{d}/prompts/en/goodbye.wav",
    ] {
        let path = path.replace("{d}", DOMAIN);
        let (status, body) = pbx.api("PUT", &path, &own, Some(&json!({"wav": base64(&one_s)})));
        assert_eq!(status, 400, "{path}: {body}");
    }
    // Another tenant's admin: 403 on every prompt route; nothing is stored.
    let other = tenant_token(DE);
    let (status, body) = upload(&pbx, &other, DOMAIN, "en", &one_s);
    assert_eq!(status, 403, "{body}");
    assert_eq!(delete(&pbx, &other, DOMAIN, "en").0, 403);
    let (status, _) = pbx.api(
        "GET",
        &format!("/v1/tenants/{DOMAIN}/prompts"),
        &other,
        None,
    );
    assert_eq!(status, 403);
    let (status, list) = pbx.api(
        "GET",
        &format!("/v1/tenants/{DOMAIN}/prompts"),
        OPERATOR_TOKEN,
        None,
    );
    assert_eq!((status, list), (200, json!([])));
    // No such tenant.
    let (status, body) = upload(&pbx, OPERATOR_TOKEN, "nope.plugboard.test", "en", &one_s);
    assert_eq!(status, 404, "{body}");
}
