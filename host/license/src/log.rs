//! Durable licensing memory: when a licence file was first seen invalid
//! (so a restart does not reset its grace period) and which expiry reminder
//! was last sent for it. Both are keyed by the file's SHA-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Remembers when each licence file was first seen invalid.
pub trait GraceLog: Send + Sync {
    /// When the file with this SHA-256 was first seen invalid, if ever.
    fn first_invalid(&self, sha256: &str) -> Option<DateTime<Utc>>;
    /// Records that it was seen invalid at `at` (keeps an earlier record).
    fn record_invalid(&self, sha256: &str, at: DateTime<Utc>);
}

/// Remembers the last expiry reminder sent for each licence file.
pub trait ReminderLog: Send + Sync {
    /// The mark (days) of the last reminder sent for the file, if any.
    fn last_sent(&self, sha256: &str) -> Option<u32>;
    /// Records that the reminder for `mark` was sent.
    fn record_sent(&self, sha256: &str, mark: u32);
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Entries {
    #[serde(default)]
    invalid: BTreeMap<String, DateTime<Utc>>,
    #[serde(default)]
    reminders: BTreeMap<String, u32>,
}

/// A [`GraceLog`] and [`ReminderLog`] in memory only (tests).
#[derive(Debug, Default)]
pub struct MemoryLog {
    entries: Mutex<Entries>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }
}

impl GraceLog for MemoryLog {
    fn first_invalid(&self, sha256: &str) -> Option<DateTime<Utc>> {
        lock(&self.entries).invalid.get(sha256).copied()
    }
    fn record_invalid(&self, sha256: &str, at: DateTime<Utc>) {
        record_invalid(&mut lock(&self.entries), sha256, at);
    }
}

impl ReminderLog for MemoryLog {
    fn last_sent(&self, sha256: &str) -> Option<u32> {
        lock(&self.entries).reminders.get(sha256).copied()
    }
    fn record_sent(&self, sha256: &str, mark: u32) {
        lock(&self.entries)
            .reminders
            .insert(sha256.to_string(), mark);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn record_invalid(e: &mut Entries, sha256: &str, at: DateTime<Utc>) -> bool {
    match e.invalid.get(sha256) {
        Some(first) if *first <= at => false,
        _ => {
            e.invalid.insert(sha256.to_string(), at);
            true
        }
    }
}

/// A [`GraceLog`] and [`ReminderLog`] kept in a small JSON file, rewritten
/// atomically (temporary file, fsync, rename, fsync of the directory) on
/// every change.
///
/// A write that fails is logged and kept in memory; an unreadable file is
/// logged and treated as empty (which can only lengthen a grace period).
#[derive(Debug)]
pub struct FileGraceLog {
    path: PathBuf,
    entries: Mutex<Entries>,
}

impl FileGraceLog {
    /// Opens (or starts) the log at `path`; its directory must exist.
    pub fn open(path: impl Into<PathBuf>) -> FileGraceLog {
        let path = path.into();
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), "licence log unreadable ({e}); starting empty");
                Entries::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Entries::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read licence log ({e}); starting empty");
                Entries::default()
            }
        };
        FileGraceLog {
            path,
            entries: Mutex::new(entries),
        }
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn save(&self, entries: &Entries) {
        if let Err(e) = write_atomically(&self.path, entries) {
            tracing::warn!(path = %self.path.display(), "cannot write licence log: {e}");
        }
    }
}

fn write_atomically(path: &Path, entries: &Entries) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?;
    plugboard_registry::fsutil::write_atomic(path, &json)
}

impl GraceLog for FileGraceLog {
    fn first_invalid(&self, sha256: &str) -> Option<DateTime<Utc>> {
        lock(&self.entries).invalid.get(sha256).copied()
    }
    fn record_invalid(&self, sha256: &str, at: DateTime<Utc>) {
        let mut e = lock(&self.entries);
        if record_invalid(&mut e, sha256, at) {
            self.save(&e);
        }
    }
}

impl ReminderLog for FileGraceLog {
    fn last_sent(&self, sha256: &str) -> Option<u32> {
        lock(&self.entries).reminders.get(sha256).copied()
    }
    fn record_sent(&self, sha256: &str, mark: u32) {
        let mut e = lock(&self.entries);
        if e.reminders.insert(sha256.to_string(), mark) != Some(mark) {
            self.save(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn memory_log_keeps_the_first_instant() {
        let log = MemoryLog::new();
        assert_eq!(log.first_invalid("a"), None);
        log.record_invalid("a", t("2027-01-02T00:00:00Z"));
        log.record_invalid("a", t("2027-03-01T00:00:00Z"));
        assert_eq!(log.first_invalid("a"), Some(t("2027-01-02T00:00:00Z")));
        log.record_invalid("a", t("2027-01-01T00:00:00Z"));
        assert_eq!(log.first_invalid("a"), Some(t("2027-01-01T00:00:00Z")));
        assert_eq!(log.last_sent("a"), None);
        log.record_sent("a", 60);
        assert_eq!(log.last_sent("a"), Some(60));
    }

    #[test]
    fn file_log_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("licence-log.json");
        let log = FileGraceLog::open(&path);
        assert_eq!(log.path(), path);
        log.record_invalid("abc", t("2027-01-02T00:00:00Z"));
        log.record_invalid("abc", t("2027-02-02T00:00:00Z"));
        log.record_sent("abc", 30);
        drop(log);
        let log = FileGraceLog::open(&path);
        assert_eq!(log.first_invalid("abc"), Some(t("2027-01-02T00:00:00Z")));
        assert_eq!(log.last_sent("abc"), Some(30));
        assert_eq!(log.first_invalid("other"), None);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("licence-log.json")]);
    }

    #[test]
    fn unreadable_file_log_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        std::fs::write(&path, "{not json").unwrap();
        let log = FileGraceLog::open(&path);
        assert_eq!(log.first_invalid("x"), None);
        log.record_invalid("x", t("2027-01-02T00:00:00Z"));
        assert_eq!(
            FileGraceLog::open(&path).first_invalid("x"),
            Some(t("2027-01-02T00:00:00Z"))
        );
    }
}
