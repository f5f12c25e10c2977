//! Prompt lookup: stock prompts per language, tenant overrides that fall back
//! to stock, and recordings. Stock and tenant prompts are decoded once and cached.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plugboard_media::Audio;
use plugboard_plugins::CallError;
use plugboard_store::{Scope, Store};

/// Decoded prompts, by file path.
pub struct Prompts {
    stock_dir: PathBuf,
    data_dir: PathBuf,
    cache: Mutex<HashMap<PathBuf, Audio>>,
}

/// Prompt names are paths below a prompt folder: `welcome`, `digits/4`.
fn valid_name(name: &str) -> bool {
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

impl Prompts {
    pub fn new(stock_dir: PathBuf, data_dir: PathBuf) -> Prompts {
        Prompts {
            stock_dir,
            data_dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn load(&self, path: &Path) -> Result<Option<Audio>, CallError> {
        if let Some(a) = self.cache.lock().expect("prompt cache").get(path) {
            return Ok(Some(a.clone()));
        }
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CallError::Failed(format!("{}: {e}", path.display()))),
        };
        let audio = plugboard_media::wav::read_wav(&bytes)
            .map_err(|e| CallError::Failed(format!("{}: {e}", path.display())))?;
        self.cache
            .lock()
            .expect("prompt cache")
            .insert(path.to_path_buf(), audio.clone());
        Ok(Some(audio))
    }

    /// A stock prompt in `lang`, falling back to English.
    pub async fn stock(&self, lang: &str, name: &str) -> Result<Audio, CallError> {
        if !valid_name(name) {
            return Err(CallError::Invalid(format!("bad prompt name {name:?}")));
        }
        for l in [lang, "en"] {
            if !valid_name(l) {
                continue;
            }
            let p = self.stock_dir.join(l).join(format!("{name}.wav"));
            if let Some(a) = self.load(&p).await? {
                return Ok(a);
            }
        }
        Err(CallError::NotFound(format!("prompt {name}")))
    }

    /// A tenant's own prompt, falling back to the stock prompt of that name.
    pub async fn tenant(&self, domain: &str, lang: &str, name: &str) -> Result<Audio, CallError> {
        if !valid_name(name) {
            return Err(CallError::Invalid(format!("bad prompt name {name:?}")));
        }
        if valid_name(domain) {
            let p = self
                .data_dir
                .join("tenants")
                .join(domain)
                .join("prompts")
                .join(format!("{name}.wav"));
            if let Some(a) = self.load(&p).await? {
                return Ok(a);
            }
        }
        self.stock(lang, name).await
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
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn prompt_names_cannot_escape_their_folder() {
        assert!(valid_name("welcome"));
        assert!(valid_name("digits/4"));
        assert!(!valid_name("../etc/passwd"));
        assert!(!valid_name("digits/../../x"));
        assert!(!valid_name("/abs"));
        assert!(!valid_name(""));
    }
}
