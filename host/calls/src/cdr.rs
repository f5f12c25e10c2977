//! Call detail records: one JSON object per line, appended when a call ends.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

/// Appends CDR lines to a file.
pub struct CdrWriter {
    file: Mutex<File>,
}

impl CdrWriter {
    pub fn open(path: &Path) -> anyhow::Result<CdrWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open CDR file {}", path.display()))?;
        Ok(CdrWriter {
            file: Mutex::new(file),
        })
    }

    /// Writes one record as a single line (one write call, so lines never interleave).
    pub fn write(&self, record: &serde_json::Value) {
        let mut line = record.to_string();
        line.push('\n');
        let mut f = self.file.lock().expect("cdr lock");
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::error!("writing CDR: {e}");
        }
    }
}
