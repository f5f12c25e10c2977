//! Text-to-speech through libespeak-ng, loaded at run time.
//!
//! libespeak-ng keeps global state and is not re-entrant, so one dedicated OS
//! thread ("espeak-ng") owns it: [`Tts::synthesize`] sends a request over a
//! bounded channel and awaits the answer. There is at most one such thread
//! per process: every [`Tts`] loaded while one is alive shares it (the first
//! library loaded wins), and a process-wide lock held by the thread for its
//! whole life keeps a new thread from initialising the library before an old
//! one has terminated it. The thread ends, calls `espeak_Terminate` and
//! unloads the library when the last [`Tts`] clone is dropped.

use std::ffi::CString;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::oneshot;

use crate::ffi::Espeak;
use crate::resample::Resampler;

/// The library [`Tts::load`] opens (Debian package `libespeak-ng1`).
pub const LIBRARY: &str = "libespeak-ng.so.1";
/// Sample rate of [`Tts::synthesize`]'s output.
pub const SAMPLE_RATE: u32 = 8000;
/// Longest text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Requests that may wait for the speech thread before [`TtsError::Busy`].
pub const QUEUE_DEPTH: usize = 64;
/// Speaking rate in words per minute (the stock prompts use the same).
const RATE_WPM: i32 = 150;
/// Longest synthesis kept, in seconds at the library's rate.
const MAX_SECONDS: usize = 300;
/// The voice used when the requested one cannot be set.
const FALLBACK_VOICE: &str = "en";

/// Why text could not be turned into speech.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtsError {
    /// libespeak-ng (or its data) is not installed or could not be
    /// initialised; the message names the cause, e.g. "cannot open shared
    /// object file". Callers fall back to stock prompts.
    #[error("text-to-speech unavailable: {0}")]
    Unavailable(String),
    /// The request itself is unacceptable (empty, too long, NUL character).
    #[error("invalid text-to-speech request: {0}")]
    Invalid(String),
    /// [`QUEUE_DEPTH`] requests are already waiting.
    #[error("text-to-speech busy: {QUEUE_DEPTH} requests waiting")]
    Busy,
    /// The library reported an error or the speech thread stopped.
    #[error("text-to-speech failed: {0}")]
    Failed(String),
}

struct Job {
    text: CString,
    voice: String,
    reply: oneshot::Sender<Result<Vec<i16>, TtsError>>,
}

/// The speech thread's handle; dropping the last one stops the thread.
struct Engine {
    jobs: SyncSender<Job>,
    path: String,
    library_rate: u32,
}

/// The live engine, if any.
static ENGINE: Mutex<Weak<Engine>> = Mutex::new(Weak::new());
/// Held by a speech thread from before `espeak_Initialize` until after
/// `espeak_Terminate`: the library's globals have one owner at a time.
static LIBRARY_LOCK: Mutex<()> = Mutex::new(());

/// A handle to the text-to-speech engine; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Tts {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field("library", &self.engine.path)
            .field("library_rate", &self.engine.library_rate)
            .finish()
    }
}

/// A voice name espeak-ng may look up: `en`, `de`, `en-us`, `en+f3`.
fn plausible_voice(v: &str) -> bool {
    (1..=40).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+".contains(&b))
}

fn speech_thread(mut espeak: Espeak, jobs: Receiver<Job>, ready: SyncSender<Result<u32, String>>) {
    let _owner = LIBRARY_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rate = match espeak.initialize() {
        Ok(rate) => rate,
        Err(e) => {
            let _ = ready.send(Err(e));
            return; // drops espeak: terminate + unload, still under the lock
        }
    };
    espeak.set_rate(RATE_WPM);
    let _ = ready.send(Ok(rate));
    drop(ready);
    let resampler = Resampler::new(rate, SAMPLE_RATE);
    let mut current_voice = FALLBACK_VOICE.to_owned();
    while let Ok(job) = jobs.recv() {
        if job.reply.is_closed() {
            continue; // the caller went away while queued
        }
        if job.voice != current_voice {
            if !plausible_voice(&job.voice) || !espeak.set_voice(&job.voice) {
                tracing::warn!(voice = %job.voice, "espeak-ng voice not available, using {FALLBACK_VOICE}");
                espeak.set_voice(FALLBACK_VOICE);
            }
            espeak.set_rate(RATE_WPM);
            // Remember the request, so a missing voice is not retried every time.
            current_voice = job.voice;
        }
        let result = espeak
            .synth(&job.text, rate as usize * MAX_SECONDS)
            .map_err(TtsError::Failed)
            .map(|(samples, truncated)| {
                if truncated {
                    tracing::warn!("text-to-speech output cut at {MAX_SECONDS} s");
                }
                resampler.process(&samples)
            });
        let _ = job.reply.send(result);
    }
    tracing::debug!("espeak-ng speech thread stopping");
}

impl Tts {
    /// Loads [`LIBRARY`] and starts (or joins) the speech thread.
    pub fn load() -> Result<Tts, TtsError> {
        Self::load_from(LIBRARY)
    }

    /// Loads libespeak-ng from `path` (a file name searched like `dlopen`
    /// does, or a path) and starts the speech thread, or joins the one already
    /// running in this process. Never panics or exits: a missing library or
    /// missing voice data is [`TtsError::Unavailable`], whose message carries
    /// libloading's error and its source.
    ///
    /// Blocks while the library initialises (about 35 ms here): call it at
    /// start-up or through `tokio::task::spawn_blocking`.
    pub fn load_from(path: &str) -> Result<Tts, TtsError> {
        let espeak = Espeak::open(path).map_err(|e| {
            tracing::info!("text-to-speech unavailable: {e}");
            TtsError::Unavailable(e)
        })?;
        let mut live = ENGINE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(engine) = live.upgrade() {
            // One engine per process; the extra handle is just closed again.
            drop(espeak);
            return Ok(Tts { engine });
        }
        let (jobs_tx, jobs_rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("espeak-ng".to_owned())
            .spawn(move || speech_thread(espeak, jobs_rx, ready_tx))
            .map_err(|e| TtsError::Unavailable(format!("cannot start speech thread: {e}")))?;
        let library_rate = match ready_rx.recv() {
            Ok(Ok(rate)) => rate,
            Ok(Err(e)) => {
                tracing::warn!("text-to-speech unavailable: {e}");
                return Err(TtsError::Unavailable(format!("{path}: {e}")));
            }
            Err(_) => {
                return Err(TtsError::Unavailable(format!(
                    "{path}: speech thread stopped during initialisation"
                )));
            }
        };
        let engine = Arc::new(Engine {
            jobs: jobs_tx,
            path: path.to_owned(),
            library_rate,
        });
        *live = Arc::downgrade(&engine);
        tracing::info!(library = path, library_rate, "text-to-speech loaded");
        Ok(Tts { engine })
    }

    /// The library's own output rate (22,050 Hz for espeak-ng), before
    /// conversion to [`SAMPLE_RATE`].
    pub fn library_rate(&self) -> u32 {
        self.engine.library_rate
    }

    /// Speaks `text` with the voice for `voice` (a language such as `en` or
    /// `de`, or an espeak-ng voice name; `en` when it cannot be set) and
    /// returns 8 kHz mono 16-bit samples.
    ///
    /// The text is plain text (no SSML), 1 to [`MAX_TEXT_CHARS`] characters
    /// and not only white space, without NUL characters; otherwise
    /// [`TtsError::Invalid`]. Requests are served one at a time, in order.
    pub async fn synthesize(&self, text: &str, voice: &str) -> Result<Vec<i16>, TtsError> {
        if text.trim().is_empty() {
            return Err(TtsError::Invalid("empty text".to_owned()));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(TtsError::Invalid(format!(
                "text of {chars} characters, at most {MAX_TEXT_CHARS} allowed"
            )));
        }
        let text = CString::new(text)
            .map_err(|_| TtsError::Invalid("text contains a NUL character".to_owned()))?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text,
            voice: voice.to_owned(),
            reply,
        };
        match self.engine.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(TtsError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(TtsError::Failed("speech thread stopped".to_owned()));
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(TtsError::Failed("speech thread stopped".to_owned())))
    }

    /// [`Tts::synthesize`] as an 8 kHz mono PCM16 WAV file (the media
    /// crate's writer), ready to store or attach to a mail.
    pub async fn synthesize_wav(&self, text: &str, voice: &str) -> Result<Vec<u8>, TtsError> {
        let samples = self.synthesize(text, voice).await?;
        Ok(plugboard_media::wav::write_wav_pcm16(&samples))
    }
}
