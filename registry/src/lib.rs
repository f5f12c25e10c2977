//! plugboard plugin distribution: signing keys, packages, the operator's
//! trust store and the OCI registry client.
//!
//! - [`keys`]: Ed25519 key files and domain-separated signatures.
//! - [`package`]: the `.pbpkg` package (`plugin.toml`, `plugin.wasm`,
//!   `plugin.sig`), its content digest and signing.
//! - [`trust`]: the operator's trust store of vendor keys and
//!   [`trust::verify`].
//! - [`fsutil`]: atomic, durable file writes (shared with the host).
//! - [`oci`]: push and pull packages to OCI distribution registries.
//!
//! Design: `docs/decisions/0010-plugin-packages.md`.

pub mod fsutil;
pub mod keys;
pub mod oci;
pub mod package;
pub mod trust;
