//! The SDK's one error type, so `?` works on everything a call flow touches.

use core::fmt;

/// Why a call-control operation did not complete (the WIT `call-error`).
pub use crate::__common::plugboard::pbx::types::CallError;
/// Why a storage operation failed (the WIT `storage-error`).
pub use crate::__common::plugboard::pbx::types::StorageError;

/// Any failure inside a call flow.
///
/// Converts from [`CallError`], [`StorageError`], `String` and `&str`, so
/// `call.answer()?`, `kv::set(..)?` and `Err("bad config")?` all work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A call-control function failed.
    Call(CallError),
    /// A key-value or recordings function failed.
    Storage(StorageError),
    /// The plugin's own error.
    Other(String),
}

impl Error {
    /// True when the caller hung up; a call flow usually just returns then.
    pub fn is_hung_up(&self) -> bool {
        matches!(self, Error::Call(CallError::HungUp))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Call(CallError::HungUp) => f.write_str("the caller hung up"),
            Error::Call(CallError::Invalid(m)) => write!(f, "invalid call argument: {m}"),
            Error::Call(CallError::NotFound(m)) => write!(f, "not found: {m}"),
            Error::Call(CallError::Denied(m)) => write!(f, "call denied: {m}"),
            Error::Call(CallError::Failed(m)) => write!(f, "call operation failed: {m}"),
            Error::Storage(StorageError::InvalidKey(m)) => write!(f, "invalid storage key: {m}"),
            Error::Storage(StorageError::QuotaExceeded) => f.write_str("storage quota exceeded"),
            Error::Storage(StorageError::Backend(m)) => write!(f, "storage failed: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        Error::Call(e)
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}

impl From<String> for Error {
    fn from(m: String) -> Self {
        Error::Other(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Self {
        Error::Other(m.to_string())
    }
}

impl From<fmt::Error> for Error {
    fn from(_: fmt::Error) -> Self {
        Error::Other("formatting failed".to_string())
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_converts_every_source() {
        fn call() -> Result<()> {
            Err(CallError::NotFound("welcome".into()))?
        }
        fn storage() -> Result<()> {
            Err(StorageError::QuotaExceeded)?
        }
        fn text() -> Result<()> {
            Err(String::from("boom"))?
        }
        assert_eq!(
            call(),
            Err(Error::Call(CallError::NotFound("welcome".into())))
        );
        assert_eq!(storage(), Err(Error::Storage(StorageError::QuotaExceeded)));
        assert_eq!(text(), Err(Error::Other("boom".into())));
    }

    #[test]
    fn only_hang_up_counts_as_hung_up() {
        assert!(Error::from(CallError::HungUp).is_hung_up());
        assert!(!Error::from(CallError::Failed("x".into())).is_hung_up());
        assert!(!Error::from("hung-up").is_hung_up());
    }

    #[test]
    fn display_names_the_cause() {
        assert_eq!(
            Error::from(StorageError::InvalidKey("".into())).to_string(),
            "invalid storage key: "
        );
        assert_eq!(
            Error::from(CallError::Failed("media".into())).to_string(),
            "call operation failed: media"
        );
    }
}
