//! Where licensing gets the time from: injectable so tests (unit and
//! end-to-end) can walk a licence through its whole life.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared by everything that evaluates licences.
pub type SharedClock = Arc<dyn Clock>;

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock read from a file holding one RFC 3339 instant
/// (`2027-09-01T00:00:00Z`), re-read on every call, so an end-to-end test
/// moves time by rewriting the file.
///
/// If the file is missing or does not hold an instant, the system time is
/// used and a warning is logged (once).
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    warned: AtomicBool,
}

impl FileClock {
    /// A clock reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileClock {
        FileClock {
            path: path.into(),
            warned: AtomicBool::new(false),
        }
    }

    /// The file it reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<DateTime<Utc>, String> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| e.to_string())?;
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("not an RFC 3339 instant: {e}"))
    }
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        match self.read() {
            Ok(t) => t,
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        path = %self.path.display(),
                        "licence clock file unusable ({e}); using the system time"
                    );
                }
                Utc::now()
            }
        }
    }
}

/// A clock that only moves when told to (unit tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock to `now` (backwards too).
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    /// Moves the clock by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn manual_clock_sets_and_advances() {
        let c = ManualClock::new(t("2027-01-01T00:00:00Z"));
        assert_eq!(c.now(), t("2027-01-01T00:00:00Z"));
        c.advance(Duration::days(2));
        assert_eq!(c.now(), t("2027-01-03T00:00:00Z"));
        c.set(t("2026-01-01T12:00:00Z"));
        assert_eq!(c.now(), t("2026-01-01T12:00:00Z"));
    }

    #[test]
    fn file_clock_rereads_the_file_and_falls_back_to_system_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        let c = FileClock::new(&path);
        assert_eq!(c.path(), path);
        // Missing: system time.
        let before = Utc::now();
        let got = c.now();
        assert!(got >= before && got <= Utc::now());
        std::fs::write(&path, "2030-05-06T07:08:09+02:00\n").unwrap();
        assert_eq!(c.now(), t("2030-05-06T05:08:09Z"));
        std::fs::write(&path, "2031-01-01T00:00:00Z").unwrap();
        assert_eq!(c.now(), t("2031-01-01T00:00:00Z"));
        // Garbage: system time again.
        std::fs::write(&path, "tomorrow").unwrap();
        assert!(c.now() >= before);
    }

    #[test]
    fn system_clock_is_now() {
        let before = Utc::now();
        let got = SystemClock.now();
        assert!(got >= before && got <= Utc::now());
    }
}
