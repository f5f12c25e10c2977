//! Prompt lookup: stock prompts per language, tenant prompt overrides per
//! language, the tenant's language fallback chain, and recordings.
//!
//! Layout on disk:
//!
//! - stock prompts: `<prompts_dir>/<lang>/<name>.wav`;
//! - tenant overrides: `<data_dir>/tenants/<domain>/prompts/<lang>/<name>.wav`
//!   (uploaded through the admin API: [`Prompts::put_override`]);
//! - older language-less tenant prompts:
//!   `<data_dir>/tenants/<domain>/prompts/<name>.wav` (still found by
//!   [`Prompt::Tenant`](plugboard_plugins::Prompt) after the language folders).
//!
//! In a call of tenant T, a prompt name is looked up in T's override folder
//! for each language of [`Tenant::languages`] in order, then in the stock
//! folder for each of those languages ([`Prompts::stock_for`],
//! [`Prompts::tenant_for`]). The first file found plays.
//!
//! Decoded audio is cached by file path together with the file's length,
//! modification time and inode: every lookup checks the file on disk, so an
//! upload, a replacement or a removal takes effect on the next lookup; upload
//! and removal through [`Prompts`] also drop the entry at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use plugboard_media::Audio;
use plugboard_media::wav::{WavError, WavFormat};
use plugboard_plugins::CallError;
use plugboard_store::{Scope, Store};
use plugboard_tenants::Tenant;

/// Largest override file accepted: 10 MiB.
pub const MAX_OVERRIDE_BYTES: usize = plugboard_admin::MAX_PROMPT_WAV;

/// Longest override accepted: 10 minutes.
pub const MAX_OVERRIDE_MS: u64 = 10 * 60 * 1000;

/// The cache drops everything when it would hold more samples than this
/// (64 MiB of decoded audio).
const CACHE_MAX_SAMPLES: usize = 32 << 20;

/// Decoded prompts, by file path.
pub struct Prompts {
    stock_dir: PathBuf,
    data_dir: PathBuf,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<PathBuf, Cached>,
    samples: usize,
}

struct Cached {
    stamp: Stamp,
    audio: Audio,
}

/// What identifies one version of a file: replacing it (a new inode after a
/// rename), rewriting it (length, modification time) changes the stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        }
    }
}

/// One tenant override, as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Override {
    /// The language folder, e.g. `de`.
    pub language: String,
    /// The prompt name, e.g. `welcome` or `digits/4`.
    pub name: String,
    /// File size.
    pub size_bytes: u64,
    /// Length of the audio; `None` if the file is not a playable WAV (placed by hand).
    pub duration_ms: Option<u64>,
}

/// Why an override could not be listed, stored or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideError {
    /// A bad name, language or file (400).
    Invalid(String),
    /// A file larger than [`MAX_OVERRIDE_BYTES`] (413).
    TooLarge(String),
    /// No such override (404).
    NotFound(String),
    /// A file system error (500).
    Io(String),
}

impl std::fmt::Display for OverrideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideError::Invalid(m)
            | OverrideError::TooLarge(m)
            | OverrideError::NotFound(m)
            | OverrideError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for OverrideError {}

/// Prompt names are paths below a prompt folder: `welcome`, `digits/4`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
}

/// Language tags name one folder: `en`, `de`, `pt-BR` (the rule of the tenant configuration).
pub fn valid_language(lang: &str) -> bool {
    (2..=16).contains(&lang.len())
        && lang
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the language and name of an override to store: the lookup rules,
/// and no hidden (dot) segments or `.wav` suffix (the file name adds it).
fn check_override_name(lang: &str, name: &str) -> Result<(), OverrideError> {
    if !valid_language(lang) {
        return Err(OverrideError::Invalid(format!(
            "language {lang:?}: use a tag like \"en\" or \"pt-BR\" (2-16 letters, digits, - or _)"
        )));
    }
    if !valid_name(name) || name.split('/').any(|s| s.starts_with('.')) {
        return Err(OverrideError::Invalid(format!(
            "prompt name {name:?}: use letters, digits, '-', '_' and '.', with '/' between \
             folders (e.g. \"welcome\", \"digits/4\"); no empty, '.' or '..' segments, \
             none starting with '.', at most 128 characters"
        )));
    }
    if name.to_ascii_lowercase().ends_with(".wav") {
        return Err(OverrideError::Invalid(format!(
            "prompt name {name:?}: leave out the .wav suffix"
        )));
    }
    Ok(())
}

fn codec_name(tag: u16) -> String {
    match tag {
        1 => "PCM".into(),
        3 => "IEEE float".into(),
        6 => "A-law".into(),
        7 => "mu-law".into(),
        0x11 => "IMA ADPCM".into(),
        0x55 => "MP3".into(),
        t => format!("format tag {t}"),
    }
}

/// "44100 Hz stereo 16-bit PCM: need 8000 Hz mono" and the like.
fn describe_unsupported(f: &WavFormat) -> String {
    let channels = match f.channels {
        1 => "mono".to_string(),
        2 => "stereo".to_string(),
        n => format!("{n} channels"),
    };
    let found = format!(
        "{} Hz {channels} {}-bit {}",
        f.sample_rate,
        f.bits_per_sample,
        codec_name(f.format_tag)
    );
    let mut need = Vec::new();
    if f.sample_rate != plugboard_media::wav::SAMPLE_RATE || f.channels != 1 {
        need.push("8000 Hz mono".to_string());
    }
    let encoding_ok = matches!((f.format_tag, f.bits_per_sample), (1, 16) | (6, 8) | (7, 8));
    if !encoding_ok {
        need.push("16-bit PCM, 8-bit mu-law or 8-bit A-law".to_string());
    }
    format!(
        "unsupported WAV format {found}: need {} (convert with e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`)",
        need.join(", ")
    )
}

/// Checks an uploaded prompt: a RIFF/WAVE file of 8 kHz mono PCM16, µ-law or
/// A-law audio, at most [`MAX_OVERRIDE_BYTES`] and [`MAX_OVERRIDE_MS`].
/// Returns the decoded audio.
pub fn check_wav(bytes: &[u8]) -> Result<Audio, OverrideError> {
    if bytes.len() > MAX_OVERRIDE_BYTES {
        return Err(OverrideError::TooLarge(format!(
            "the WAV file is {} bytes; prompts are at most {} bytes (10 MiB)",
            bytes.len(),
            MAX_OVERRIDE_BYTES
        )));
    }
    let audio = plugboard_media::wav::read_wav(bytes).map_err(|e| match e {
        WavError::Malformed(m) => OverrideError::Invalid(format!("not a valid WAV file: {m}")),
        WavError::Unsupported(f) => OverrideError::Invalid(describe_unsupported(&f)),
    })?;
    if audio.samples.is_empty() {
        return Err(OverrideError::Invalid(
            "the WAV file holds no audio (empty data chunk)".into(),
        ));
    }
    let ms = audio_ms(&audio);
    if ms > MAX_OVERRIDE_MS {
        return Err(OverrideError::Invalid(format!(
            "the WAV file is {:.1} minutes long; prompts are at most 10 minutes",
            ms as f64 / 60_000.0
        )));
    }
    Ok(audio)
}

fn audio_ms(a: &Audio) -> u64 {
    a.samples.len() as u64 * 1000 / u64::from(plugboard_media::SAMPLE_RATE)
}

fn io_err(what: &Path, e: std::io::Error) -> OverrideError {
    OverrideError::Io(format!("{}: {e}", what.display()))
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

impl Prompts {
    pub fn new(stock_dir: PathBuf, data_dir: PathBuf) -> Prompts {
        Prompts {
            stock_dir,
            data_dir,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// `<data_dir>/tenants/<domain>/prompts`, if `domain` is a safe folder name.
    fn tenant_dir(&self, domain: &str) -> Option<PathBuf> {
        if valid_name(domain) && !domain.contains('/') {
            Some(self.data_dir.join("tenants").join(domain).join("prompts"))
        } else {
            None
        }
    }

    /// The files tried for `name`, in order: the tenant's folder (if `domain`)
    /// per language, then its language-less file (if `legacy`), then stock per
    /// language. Unsafe languages are skipped; `name` must be valid.
    fn candidates(
        &self,
        domain: Option<&str>,
        langs: &[&str],
        name: &str,
        legacy: bool,
    ) -> Vec<PathBuf> {
        let file = format!("{name}.wav");
        let langs: Vec<&str> = langs
            .iter()
            .copied()
            .filter(|l| valid_language(l))
            .collect();
        let mut out = Vec::new();
        if let Some(dir) = domain.and_then(|d| self.tenant_dir(d)) {
            out.extend(langs.iter().map(|l| dir.join(l).join(&file)));
            if legacy {
                out.push(dir.join(&file));
            }
        }
        out.extend(langs.iter().map(|l| self.stock_dir.join(l).join(&file)));
        out
    }

    async fn load(&self, path: &Path) -> Result<Option<Audio>, CallError> {
        let failed =
            |e: &dyn std::fmt::Display| CallError::Failed(format!("{}: {e}", path.display()));
        let meta = match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(failed(&e)),
        };
        let stamp = Stamp::of(&meta);
        if let Some(c) = self.cache.lock().expect("prompt cache").entries.get(path)
            && c.stamp == stamp
        {
            return Ok(Some(c.audio.clone()));
        }
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(failed(&e)),
        };
        let audio = plugboard_media::wav::read_wav(&bytes).map_err(|e| failed(&e))?;
        // If the file changed between the stat and the read, the stamp no
        // longer matches the file and the next lookup reads it again.
        let mut cache = self.cache.lock().expect("prompt cache");
        if let Some(old) = cache.entries.remove(path) {
            cache.samples -= old.audio.samples.len();
        }
        let n = audio.samples.len();
        if cache.samples + n > CACHE_MAX_SAMPLES {
            cache.entries.clear();
            cache.samples = 0;
        }
        if n <= CACHE_MAX_SAMPLES {
            cache.samples += n;
            cache.entries.insert(
                path.to_path_buf(),
                Cached {
                    stamp,
                    audio: audio.clone(),
                },
            );
        }
        Ok(Some(audio))
    }

    fn forget(&self, path: &Path) {
        let mut cache = self.cache.lock().expect("prompt cache");
        if let Some(old) = cache.entries.remove(path) {
            cache.samples -= old.audio.samples.len();
        }
    }

    /// The first of [`Prompts::candidates`] that exists.
    async fn resolve(
        &self,
        domain: Option<&str>,
        langs: &[&str],
        name: &str,
        legacy: bool,
    ) -> Result<Audio, CallError> {
        if !valid_name(name) {
            return Err(CallError::Invalid(format!("bad prompt name {name:?}")));
        }
        for p in self.candidates(domain, langs, name, legacy) {
            if let Some(a) = self.load(&p).await? {
                return Ok(a);
            }
        }
        Err(CallError::NotFound(format!("prompt {name}")))
    }

    /// A stock prompt (`Prompt::Stock`) in a call of `tenant`: the tenant's
    /// override in each language of [`Tenant::languages`], then the stock
    /// prompt in each of them.
    pub async fn stock_for(&self, tenant: &Tenant, name: &str) -> Result<Audio, CallError> {
        self.resolve(Some(&tenant.domain), &tenant.languages(), name, false)
            .await
    }

    /// A tenant prompt (`Prompt::Tenant`) in a call of `tenant`: the tenant's
    /// file in each language of [`Tenant::languages`], then its language-less
    /// file, then the stock prompt in each language.
    pub async fn tenant_for(&self, tenant: &Tenant, name: &str) -> Result<Audio, CallError> {
        self.resolve(Some(&tenant.domain), &tenant.languages(), name, true)
            .await
    }

    /// A recording of this plugin and tenant (not cached).
    pub async fn recording(
        &self,
        store: &dyn Store,
        scope: &Scope,
        id: &str,
    ) -> Result<Audio, CallError> {
        let found = store
            .recording_get(scope, id)
            .await
            .map_err(|e| CallError::Invalid(e.to_string()))?;
        let Some((_, path)) = found else {
            return Err(CallError::NotFound(format!("recording {id}")));
        };
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| CallError::Failed(format!("recording {id}: {e}")))?;
        plugboard_media::wav::read_wav(&bytes)
            .map_err(|e| CallError::Failed(format!("recording {id}: {e}")))
    }

    /// The override file of (`domain`, `lang`, `name`) after checking all three.
    fn override_path(
        &self,
        domain: &str,
        lang: &str,
        name: &str,
    ) -> Result<PathBuf, OverrideError> {
        check_override_name(lang, name)?;
        let dir = self
            .tenant_dir(domain)
            .ok_or_else(|| OverrideError::Invalid(format!("domain {domain:?}")))?;
        Ok(dir.join(lang).join(format!("{name}.wav")))
    }

    /// The tenant's overrides, sorted by language and name.
    pub async fn list_overrides(&self, domain: &str) -> Result<Vec<Override>, OverrideError> {
        let root = self
            .tenant_dir(domain)
            .ok_or_else(|| OverrideError::Invalid(format!("domain {domain:?}")))?;
        tokio::task::spawn_blocking(move || list_dir(&root))
            .await
            .map_err(|e| OverrideError::Io(e.to_string()))?
    }

    /// Checks `wav` ([`check_wav`]) and stores it as the tenant's override of
    /// `name` in `lang`, replacing any previous one atomically. The next
    /// lookup plays it.
    pub async fn put_override(
        &self,
        domain: &str,
        lang: &str,
        name: &str,
        wav: Vec<u8>,
    ) -> Result<Override, OverrideError> {
        let path = self.override_path(domain, lang, name)?;
        let audio = check_wav(&wav)?;
        let size = wav.len() as u64;
        let p = path.clone();
        tokio::task::spawn_blocking(move || plugboard_registry::fsutil::write_atomic(&p, &wav))
            .await
            .map_err(|e| OverrideError::Io(e.to_string()))?
            .map_err(|e| io_err(&path, e))?;
        self.forget(&path);
        Ok(Override {
            language: lang.to_string(),
            name: name.to_string(),
            size_bytes: size,
            duration_ms: Some(audio_ms(&audio)),
        })
    }

    /// Removes the tenant's override of `name` in `lang`; the next lookup
    /// falls back along the chain (to the stock prompt).
    pub async fn delete_override(
        &self,
        domain: &str,
        lang: &str,
        name: &str,
    ) -> Result<(), OverrideError> {
        let path = self.override_path(domain, lang, name)?;
        let result = tokio::fs::remove_file(&path).await;
        self.forget(&path);
        match result {
            Ok(()) => Ok(()),
            Err(e) if is_missing(&e) => Err(OverrideError::NotFound(format!(
                "no {lang} override of prompt {name} in {domain}"
            ))),
            Err(e) => Err(io_err(&path, e)),
        }
    }
}

/// Every `<lang>/<name>.wav` below `root` (a tenant's prompt folder).
fn list_dir(root: &Path) -> Result<Vec<Override>, OverrideError> {
    let mut out = Vec::new();
    let langs = match std::fs::read_dir(root) {
        Ok(r) => r,
        Err(e) if is_missing(&e) => return Ok(out),
        Err(e) => return Err(io_err(root, e)),
    };
    for entry in langs {
        let entry = entry.map_err(|e| io_err(root, e))?;
        let Some(lang) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid_language(&lang) || !entry.path().is_dir() {
            continue;
        }
        walk(&entry.path(), &lang, "", 0, &mut out)?;
    }
    out.sort_by(|a, b| (&a.language, &a.name).cmp(&(&b.language, &b.name)));
    Ok(out)
}

fn walk(
    dir: &Path,
    lang: &str,
    prefix: &str,
    depth: usize,
    out: &mut Vec<Override>,
) -> Result<(), OverrideError> {
    // Names are at most 128 characters: folders cannot nest deeper than that.
    if depth > 64 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if file.starts_with('.') {
            continue; // temporary files of uploads in progress
        }
        let kind = entry.file_type().map_err(|e| io_err(&entry.path(), e))?;
        if kind.is_dir() {
            walk(
                &entry.path(),
                lang,
                &format!("{prefix}{file}/"),
                depth + 1,
                out,
            )?;
            continue;
        }
        let Some(stem) = file.strip_suffix(".wav") else {
            continue;
        };
        let name = format!("{prefix}{stem}");
        if !kind.is_file() || !valid_name(&name) {
            continue;
        }
        let path = entry.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(io_err(&path, e)),
        };
        let duration_ms = plugboard_media::wav::read_wav(&bytes)
            .ok()
            .map(|a| audio_ms(&a));
        out.push(Override {
            language: lang.to_string(),
            name,
            size_bytes: bytes.len() as u64,
            duration_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder below the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "plugboard-prompts-{tag}-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tone(ms: usize) -> Vec<u8> {
        let samples: Vec<i16> = (0..ms * 8)
            .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI / 8.0).sin() * 8000.0) as i16)
            .collect();
        plugboard_media::wav::write_wav_pcm16(&samples)
    }

    fn tenant(domain: &str, language: &str, fallback: &[&str]) -> Tenant {
        let doc = serde_json::json!({
            "domain": domain, "language": language, "language_fallback": fallback,
        });
        serde_json::from_value::<plugboard_tenants::TenantDoc>(doc)
            .unwrap()
            .into_tenant()
            .unwrap()
    }

    fn setup() -> (TempDir, Prompts) {
        let t = TempDir::new("t");
        let stock = t.0.join("stock");
        for (lang, name, ms) in [("en", "welcome", 100), ("fr", "welcome", 200)] {
            std::fs::create_dir_all(stock.join(lang)).unwrap();
            std::fs::write(stock.join(lang).join(format!("{name}.wav")), tone(ms)).unwrap();
        }
        let p = Prompts::new(stock, t.0.join("data"));
        (t, p)
    }

    #[test]
    fn prompt_names_cannot_escape_their_folder() {
        assert!(valid_name("welcome"));
        assert!(valid_name("digits/4"));
        assert!(!valid_name("../etc/passwd"));
        assert!(!valid_name("digits/../../x"));
        assert!(!valid_name("/abs"));
        assert!(!valid_name(""));
        assert!(valid_language("pt-BR"));
        assert!(!valid_language("../en"));
        assert!(!valid_language("e"));
        assert!(!valid_language("en/x"));
    }

    #[test]
    fn the_chain_is_overrides_per_language_then_stock_per_language() {
        let (_t, p) = setup();
        let data = p.data_dir.join("tenants/a.test/prompts");
        let c = p.candidates(Some("a.test"), &["de", "fr", "en"], "welcome", false);
        let want: Vec<PathBuf> = ["de", "fr", "en"]
            .iter()
            .map(|l| data.join(l).join("welcome.wav"))
            .chain(
                ["de", "fr", "en"]
                    .iter()
                    .map(|l| p.stock_dir.join(l).join("welcome.wav")),
            )
            .collect();
        assert_eq!(c, want);
        // Tenant prompts also try the language-less file, after the languages.
        let c = p.candidates(Some("a.test"), &["en"], "x", true);
        assert_eq!(
            c,
            vec![
                data.join("en/x.wav"),
                data.join("x.wav"),
                p.stock_dir.join("en/x.wav")
            ]
        );
        // Unsafe languages and domains are skipped.
        let c = p.candidates(Some("../b.test"), &["..", "en"], "x", true);
        assert_eq!(c, vec![p.stock_dir.join("en/x.wav")]);
    }

    #[tokio::test]
    async fn overrides_play_and_removing_one_brings_back_the_stock_prompt() {
        let (_t, p) = setup();
        let t = tenant("a.test", "de", &["fr"]);
        let ms = |a: Audio| a.duration_ms();
        // No "de" prompt anywhere: the fallback "fr" stock prompt.
        assert_eq!(ms(p.stock_for(&t, "welcome").await.unwrap()), 200);
        // A "de" override wins.
        let o = p
            .put_override("a.test", "de", "welcome", tone(300))
            .await
            .unwrap();
        assert_eq!((o.duration_ms, o.size_bytes), (Some(300), 44 + 4800));
        assert_eq!(ms(p.stock_for(&t, "welcome").await.unwrap()), 300);
        assert_eq!(ms(p.tenant_for(&t, "welcome").await.unwrap()), 300);
        // Replaced: the new one plays at once.
        p.put_override("a.test", "de", "welcome", tone(400))
            .await
            .unwrap();
        assert_eq!(ms(p.stock_for(&t, "welcome").await.unwrap()), 400);
        // An "en" override ranks below the stock "fr" prompt for this tenant...
        p.put_override("a.test", "en", "welcome", tone(500))
            .await
            .unwrap();
        p.delete_override("a.test", "de", "welcome").await.unwrap();
        assert_eq!(ms(p.stock_for(&t, "welcome").await.unwrap()), 500);
        p.delete_override("a.test", "en", "welcome").await.unwrap();
        assert_eq!(ms(p.stock_for(&t, "welcome").await.unwrap()), 200);
        // ... and other tenants never see it.
        let other = tenant("b.test", "en", &[]);
        p.put_override("a.test", "en", "welcome", tone(500))
            .await
            .unwrap();
        assert_eq!(ms(p.stock_for(&other, "welcome").await.unwrap()), 100);
        // Listing.
        p.put_override("a.test", "fr", "digits/4", tone(20))
            .await
            .unwrap();
        let list = p.list_overrides("a.test").await.unwrap();
        let names: Vec<_> = list
            .iter()
            .map(|o| (o.language.as_str(), o.name.as_str(), o.duration_ms))
            .collect();
        assert_eq!(
            names,
            vec![("en", "welcome", Some(500)), ("fr", "digits/4", Some(20))]
        );
        assert!(p.list_overrides("b.test").await.unwrap().is_empty());
        // Missing ones are NotFound.
        assert!(matches!(
            p.delete_override("a.test", "de", "welcome").await,
            Err(OverrideError::NotFound(_))
        ));
        assert!(matches!(
            p.stock_for(&t, "nope").await,
            Err(CallError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_file_replaced_on_disk_is_read_again() {
        let (_t, p) = setup();
        let t = tenant("a.test", "en", &[]);
        assert_eq!(p.stock_for(&t, "welcome").await.unwrap().duration_ms(), 100);
        plugboard_registry::fsutil::write_atomic(&p.stock_dir.join("en/welcome.wav"), &tone(700))
            .unwrap();
        assert_eq!(p.stock_for(&t, "welcome").await.unwrap().duration_ms(), 700);
    }

    #[tokio::test]
    async fn bad_names_languages_and_files_are_refused() {
        let (_t, p) = setup();
        for (lang, name) in [
            ("en", "../x"),
            ("en", "a/../../x"),
            ("en", "/abs"),
            ("en", ".hidden"),
            ("en", "welcome.wav"),
            ("en", ""),
            ("..", "x"),
            ("en/de", "x"),
            ("e", "x"),
        ] {
            let r = p.put_override("a.test", lang, name, tone(100)).await;
            assert!(
                matches!(r, Err(OverrideError::Invalid(_))),
                "{lang} {name}: {r:?}"
            );
        }
        assert!(matches!(
            p.put_override("../x", "en", "x", tone(100)).await,
            Err(OverrideError::Invalid(_))
        ));
        let stereo = {
            let mut v = plugboard_media::wav::write_wav_pcm16(&[0; 1000]);
            v[22..24].copy_from_slice(&2u16.to_le_bytes());
            v[24..28].copy_from_slice(&44100u32.to_le_bytes());
            v
        };
        let Err(OverrideError::Invalid(m)) = p.put_override("a.test", "en", "x", stereo).await
        else {
            panic!("stereo accepted")
        };
        assert!(
            m.contains("44100 Hz stereo") && m.contains("need 8000 Hz mono"),
            "{m}"
        );
        let Err(OverrideError::Invalid(m)) = check_wav(b"not a wav") else {
            panic!()
        };
        assert!(m.contains("not a valid WAV"), "{m}");
        let long = plugboard_media::wav::write_wav_ulaw(&vec![0; 8000 * 601]);
        let Err(OverrideError::Invalid(m)) = check_wav(&long) else {
            panic!()
        };
        assert!(m.contains("10 minutes"), "{m}");
        let huge = vec![0u8; MAX_OVERRIDE_BYTES + 1];
        assert!(matches!(check_wav(&huge), Err(OverrideError::TooLarge(_))));
        // Nothing was written.
        assert!(p.list_overrides("a.test").await.unwrap().is_empty());
    }
}
