//! plugboard-admin: the admin HTTP API (REST + JSON) and its command-line client.
//!
//! The server half is [`serve`]: HTTP/1.1 over hyper on a listener the host
//! binds, answering the routes of `/v1` (the complete description is the
//! OpenAPI 3.1 document [`OPENAPI_JSON`], also served at
//! `GET /v1/openapi.json`). This crate knows nothing about tenants, plugins or
//! calls: the host implements [`AdminBackend`], and the crate does everything
//! HTTP around it:
//!
//! - **authentication**: `Authorization: Bearer TOKEN`, mapped to a
//!   [`Principal`] by [`AdminBackend::authenticate`]; missing or unknown
//!   tokens get 401 with `WWW-Authenticate: Bearer`;
//! - **authorisation**: a [`Principal::TenantAdmin`] may use only
//!   `/v1/tenants/{its domain}/...` (case-insensitive) and `GET /v1/tenants`
//!   (filtered to its own entry); anything else, including every
//!   operator-only route, is 403 `forbidden` whether or not the domain exists;
//! - **routing**: a static table with `{param}` segments, percent-decoded
//!   (`%2A98` is `*98`); unknown paths are 404, known paths with another
//!   method 405 with `Allow`;
//! - **bodies**: `Content-Type` JSON (or absent, else 415), at most
//!   [`MAX_JSON_BODY`] bytes ([`MAX_UPLOAD_BODY`] for plugin uploads,
//!   [`MAX_PROMPT_BODY`] for prompt uploads, else 413), a JSON object (else
//!   400 naming the problem); plugin and prompt uploads are base64-decoded here;
//! - **answers**: JSON; `Ok(Value::Null)` from the backend is 204; errors are
//!   `{"error": {"code": "...", "message": "..."}}` ([`ApiError`]); metrics
//!   are rendered as Prometheus text ([`metrics`]) and CDRs as CSV on request
//!   ([`csv`]: `?format=csv` or `Accept: text/csv`).
//!
//! The client half is [`client::Client`] (plain HTTP) and [`cli`], the
//! `plugboard tenant|user|dialplan|plugin|prompt|calls|...` subcommands that the host
//! binary embeds.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn example(backend: Arc<dyn plugboard_admin::AdminBackend>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(plugboard_admin::serve(listener, backend, stopped));
//! // ... later:
//! let _ = stop.send(());
//! let _ = server.await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod auth;
mod backend;
pub mod cli;
pub mod client;
pub mod csv;
mod error;
mod handlers;
mod local;
pub mod metrics;
mod routes;
mod server;

pub use backend::{AdminBackend, CdrQuery, PluginUpload, Principal};
pub use error::ApiError;
pub use metrics::{Metric, MetricKind, Sample};
pub use server::serve;

/// Largest request body on JSON routes: 1 MiB.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Largest request body of `POST /v1/plugins` (base64 of the component included): 64 MiB.
pub const MAX_UPLOAD_BODY: usize = 64 << 20;

/// Largest prompt file of `PUT /v1/tenants/{domain}/prompts/{language}/{name}`: 10 MiB.
pub const MAX_PROMPT_WAV: usize = 10 << 20;

/// Largest request body of a prompt upload: the base64 of [`MAX_PROMPT_WAV`]
/// bytes and some room for the JSON around it (14 MiB).
pub const MAX_PROMPT_BODY: usize = 14 << 20;

/// The OpenAPI 3.1 description of every route, as served at `GET /v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");
