//! plugboard-store: every piece of state the PBX keeps, behind one async trait.
//!
//! Three kinds of data live here, all keyed by tenant so that no code path can
//! reach another tenant's rows or files:
//!
//! - **registrations** ([`Binding`]s per tenant and AOR user), soft state that
//!   phones refresh every few minutes and that is written on every REGISTER;
//! - **key-value** data scoped to a ([`Scope`]) tenant and plugin, durable;
//! - **recordings** (WAV audio plus [`RecordingMeta`]) scoped the same way, durable.
//!
//! [`Store`] is the contract. It is `async`, takes only owned or borrowed plain
//! data, and never hands out in-process handles (locks, transactions), so a
//! server backend (PostgreSQL shared by several host nodes) can implement it
//! later without changing callers. [`EmbeddedStore`] is the default: no server
//! to install, metadata in [redb](https://www.redb.org) and audio as files; see
//! the [`embedded`] module docs for its durability and performance choices.
//!
//! Everything a plugin can influence (keys, prefixes, recording ids) is
//! untrusted: it is validated here and refused with [`StoreError::InvalidKey`]
//! rather than escaped, so `../other/x` can never name a file.

#![deny(missing_docs)]

mod codec;
pub mod embedded;
mod validate;

use std::path::PathBuf;

pub use embedded::EmbeddedStore;
pub use validate::{MAX_KEY_BYTES, MAX_RECORDING_BYTES, MAX_VALUE_BYTES};

/// One registered contact of a user (RFC 3261 section 10).
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Full Contact URI text, e.g. `sip:101@192.0.2.7:5062;transport=udp`.
    pub contact: String,
    /// Absolute expiry time, seconds since the Unix epoch.
    pub expires_at_unix: u64,
    /// Where the REGISTER came from, e.g. `udp:192.0.2.7:5062`.
    pub source: String,
    /// Call-ID of the REGISTER that created or refreshed this binding.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Contact `q` preference, if the phone sent one.
    pub q: Option<f32>,
    /// User-Agent header of the phone, if any.
    pub user_agent: Option<String>,
}

/// The owner of key-value data and recordings: one plugin within one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Tenant name (its SIP domain, lower-cased).
    pub tenant: String,
    /// Plugin name as configured by the operator.
    pub plugin: String,
}

impl Scope {
    /// Builds a scope from a tenant and a plugin name.
    pub fn new(tenant: impl Into<String>, plugin: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            plugin: plugin.into(),
        }
    }
}

/// Metadata of a stored recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMeta {
    /// Store-chosen identifier: unique, URL-safe (lower-case hex).
    pub id: String,
    /// Duration as reported by the recorder.
    pub duration_ms: u32,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Size of the WAV file in bytes.
    pub size_bytes: u64,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A key, prefix, id, tenant, plugin or user name was refused (the text says which and why).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A value or recording is larger than the store accepts.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The addressed item does not exist.
    #[error("not found")]
    NotFound,
    /// A file system operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The database backend failed (message from the backend).
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// The storage contract. Every method is scoped by tenant; implementations must
/// make it impossible for one tenant's (or plugin's) arguments to reach another's data.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Replaces the whole binding set of `user` in `tenant`, atomically.
    /// An empty slice removes the user's registration.
    async fn set_bindings(
        &self,
        tenant: &str,
        user: &str,
        bindings: &[Binding],
    ) -> Result<(), StoreError>;
    /// Current bindings of `user` in `tenant` (expired ones included: the
    /// registrar filters by time). Empty if none.
    async fn bindings(&self, tenant: &str, user: &str) -> Result<Vec<Binding>, StoreError>;
    /// Every stored binding set as `(tenant, user, bindings)`, e.g. to reload a registrar.
    async fn all_bindings(&self) -> Result<Vec<(String, String, Vec<Binding>)>, StoreError>;

    /// Value of `key` in `scope`, if set. Keys are 1..=256 bytes of printable ASCII.
    async fn kv_get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value` (at most [`MAX_VALUE_BYTES`]); durable when this returns.
    async fn kv_set(&self, scope: &Scope, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes `key`; returns whether it existed. Durable when this returns.
    async fn kv_delete(&self, scope: &Scope, key: &str) -> Result<bool, StoreError>;
    /// Keys of `scope` that start with `prefix` (may be empty), in byte order.
    async fn kv_list(&self, scope: &Scope, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Stores a WAV recording; the store picks the id. Durable when this returns.
    async fn recording_put(
        &self,
        scope: &Scope,
        wav: Vec<u8>,
        duration_ms: u32,
    ) -> Result<RecordingMeta, StoreError>;
    /// Metadata and file path of recording `id`, if it exists in `scope`.
    async fn recording_get(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<(RecordingMeta, PathBuf)>, StoreError>;
    /// All recordings of `scope`, oldest first.
    async fn recording_list(&self, scope: &Scope) -> Result<Vec<RecordingMeta>, StoreError>;
    /// Deletes recording `id`; returns whether it existed.
    async fn recording_delete(&self, scope: &Scope, id: &str) -> Result<bool, StoreError>;

    /// Bytes of recordings stored for `tenant`, every plugin (storage quotas).
    async fn tenant_recording_bytes(&self, tenant: &str) -> Result<u64, StoreError>;

    /// A host document (tenant definitions, plugin bindings, ...): `kind` and
    /// `key` are chosen by the host, never by plugins. `None` if absent.
    async fn doc_get(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a host document; durable when this returns.
    async fn doc_put(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes a host document; returns whether it existed. Durable when this returns.
    async fn doc_delete(&self, kind: &str, key: &str) -> Result<bool, StoreError>;
    /// Every document of `kind` as `(key, value)`, in key order.
    async fn doc_list(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Makes every write accepted so far durable (called on shutdown; soft
    /// state such as bindings may otherwise be written lazily).
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
