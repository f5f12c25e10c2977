//! Text-to-speech through the installed libespeak-ng (Debian `libespeak-ng1`
//! and `espeak-ng-data`; `scripts/install-deps.sh --test`). Output varies
//! slightly between versions, so these tests check duration and loudness,
//! never bytes.

use std::time::Duration;

use plugboard_speech::{MAX_TEXT_CHARS, SAMPLE_RATE, Tts, TtsError};

fn tts() -> Tts {
    Tts::load().unwrap_or_else(|e| panic!("libespeak-ng1 must be installed for these tests: {e}"))
}

fn seconds(samples: &[i16]) -> f64 {
    samples.len() as f64 / f64::from(SAMPLE_RATE)
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64)
        .sqrt()
}

#[tokio::test]
async fn a_sentence_is_plausible_8khz_speech() {
    let tts = tts();
    assert_eq!(tts.library_rate(), 22_050);
    let samples = tts
        .synthesize("You have three new messages. First message.", "en")
        .await
        .expect("synthesis");
    let secs = seconds(&samples);
    assert!((1.0..6.0).contains(&secs), "duration {secs} s");
    let level = rms(&samples);
    assert!(level > 300.0, "RMS {level} looks like silence");
    // Longer text gives longer audio.
    let short = tts.synthesize("Hello.", "en").await.expect("short");
    assert!(
        short.len() < samples.len() / 2,
        "{} vs {}",
        short.len(),
        samples.len()
    );
}

#[tokio::test]
async fn wav_output_is_a_telephone_prompt() {
    let wav = tts()
        .synthesize_wav("Please leave a message after the tone.", "en")
        .await
        .expect("wav");
    let audio = plugboard_media::wav::read_wav(&wav).expect("valid 8 kHz WAV");
    assert!(
        (1000..6000).contains(&audio.duration_ms()),
        "{} ms",
        audio.duration_ms()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_serialise_on_the_speech_thread() {
    let tts = tts();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let tts = tts.clone();
            tokio::spawn(async move {
                let voice = if i % 3 == 0 { "de" } else { "en" };
                let text = format!("Request number {i} is being spoken now.");
                tts.synthesize(&text, voice).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let samples = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("in time")
            .expect("task")
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        let secs = seconds(&samples);
        assert!((1.0..6.0).contains(&secs), "request {i}: {secs} s");
        assert!(rms(&samples) > 300.0, "request {i} silent");
    }
}

#[tokio::test]
async fn unknown_voices_fall_back_to_english() {
    let tts = tts();
    for voice in ["xx-nonexistent", "../../etc/passwd", "", "en\0de"] {
        let samples = tts
            .synthesize("Fallback voice test.", voice)
            .await
            .unwrap_or_else(|e| panic!("voice {voice:?}: {e}"));
        assert!(rms(&samples) > 300.0, "voice {voice:?} silent");
    }
    let german = tts.synthesize("Sie haben eine neue Nachricht.", "de").await;
    assert!(german.is_ok(), "{german:?}");
}

#[tokio::test]
async fn invalid_text_is_refused() {
    let tts = tts();
    for text in ["", "   \n\t"] {
        assert!(
            matches!(tts.synthesize(text, "en").await, Err(TtsError::Invalid(_))),
            "{text:?}"
        );
    }
    let too_long = "a".repeat(MAX_TEXT_CHARS + 1);
    let err = tts.synthesize(&too_long, "en").await.unwrap_err();
    assert!(
        matches!(&err, TtsError::Invalid(m) if m.contains("1001")),
        "{err}"
    );
    // Characters, not bytes: 1000 two-byte characters are accepted.
    let umlauts = "ä".repeat(MAX_TEXT_CHARS);
    assert!(tts.synthesize(&umlauts, "de").await.is_ok());
    assert!(matches!(
        tts.synthesize("nul\0byte", "en").await,
        Err(TtsError::Invalid(_))
    ));
}

#[test]
fn a_missing_library_is_unavailable_not_fatal() {
    let path = "/nonexistent/libespeak-ng.so.1";
    let err = Tts::load_from(path).unwrap_err();
    let TtsError::Unavailable(msg) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(msg.contains(path), "{msg}");
    assert!(msg.contains("cannot open shared object file"), "{msg}");
    assert!(
        err.to_string().starts_with("text-to-speech unavailable"),
        "{err}"
    );
}

#[test]
fn a_library_that_is_not_espeak_is_unavailable() {
    let err = Tts::load_from("libc.so.6").unwrap_err();
    assert!(
        matches!(&err, TtsError::Unavailable(m) if m.contains("espeak_Initialize")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_engine_can_be_dropped_and_loaded_again() {
    for round in 0..3 {
        let tts = tts();
        let samples = tts
            .synthesize("Round trip.", "en")
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(rms(&samples) > 300.0);
        drop(tts);
    }
}
