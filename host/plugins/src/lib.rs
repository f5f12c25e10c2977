//! # plugboard-plugins: the plugin runtime
//!
//! Loads WebAssembly call-flow components (`plugboard:pbx@0.1.x`, world
//! `call-flow`), compiles each once (cached on disk by content hash),
//! validates what it exports and imports, and runs `handle-call` in a fresh,
//! limited instance per call:
//!
//! - **Memory**: a per-instance cap on linear memory (default 64 MiB); a grow
//!   past it traps at once and is reported as [`FaultKind::MemoryLimit`].
//! - **CPU**: epoch interruption with a per-store meter that counts only time
//!   spent running wasm, not time waiting in async host calls (see
//!   `state.rs`); a spinning plugin ends as [`FaultKind::CpuLimit`].
//! - **Isolation**: a trap ends that instance only; the store is dropped and
//!   the caller gets a [`RunOutcome::Fault`] to apply its fallback.
//!
//! The call layer implements [`CallControl`] for a call, the store adapter
//! implements [`PluginStorage`] for (tenant, plugin), and they call
//! [`Plugin::run_call`]:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use plugboard_plugins::*;
//! # async fn demo(control: Arc<dyn CallControl>, storage: Arc<dyn PluginStorage>) -> anyhow::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let plugin = rt.load("attendant", std::path::Path::new("attendant.wasm"))?;
//! let outcome = plugin
//!     .run_call(CallRun {
//!         control,
//!         storage,
//!         config: vec![("greeting".into(), "welcome".into())],
//!         log_fields: ("acme.example".into(), "call-1".into()),
//!         limits: RunLimits::default(),
//!         services: None,
//!     })
//!     .await;
//! if let RunOutcome::Fault(f) = outcome {
//!     eprintln!("{}: {}", f.kind.label(), f.message);
//! }
//! # Ok(()) }
//! ```
//!
//! Layout: `types.rs` (host mirror types and traits), `bindings.rs`
//! (`bindgen!` and conversions), `host/` (one module per WIT interface),
//! `state.rs` (store data and meters), `contract.rs` (version and import
//! checks), `runtime.rs` (engine, cache, runs).

mod bindings;
mod catalog;
mod contract;
mod host;
pub mod manifest;
mod runtime;
mod state;
mod types;

pub use catalog::{ActiveCall, Catalog, CatalogError, Installed, Provenance, Signer};
pub use manifest::{Capability, Manifest, Role};
pub use runtime::{
    CallRun, Fault, FaultKind, Plugin, RunLimits, RunOutcome, Runtime, RuntimeConfig, RuntimeStats,
};
pub use types::{
    AttachmentSource, DateTimeStyle, DirectoryEntry, DirectoryError, LocalTime, MailAttachment,
    MailError, MailMessage, MwiCounts, NoServices, Redirection, TenantServices, TtsError,
};
pub use types::{
    CallControl, CallError, CallInfo, CollectOptions, Collected, DialOutcome, Party, PlayOutcome,
    PluginStorage, Prompt, RecordOptions, RecordStop, RecordingInfo, RecordingMeta, StorageError,
};
pub use types::{
    CallEvent, Event, EventKind, HttpClient, HttpError, HttpRequest, HttpResponse, ScreenRequest,
    Verdict,
};
