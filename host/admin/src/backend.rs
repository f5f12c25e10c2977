//! The contract between the HTTP layer and the PBX: [`AdminBackend`] and [`Principal`].

use async_trait::async_trait;
use serde_json::Value;

use crate::error::ApiError;
use crate::metrics::Metric;

/// Who is calling, as established by [`AdminBackend::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The PBX operator: every route, every tenant.
    Operator,
    /// The administrator of one tenant: only `/v1/tenants/{domain}/...` of that
    /// domain (compared case-insensitively), never operator-only routes.
    TenantAdmin {
        /// The tenant's SIP domain.
        domain: String,
    },
}

impl Principal {
    /// Whether this principal may act on tenant `domain` (ASCII case-insensitive).
    pub fn may_access_tenant(&self, domain: &str) -> bool {
        match self {
            Principal::Operator => true,
            Principal::TenantAdmin { domain: own } => own.eq_ignore_ascii_case(domain),
        }
    }

    /// Whether this is the operator.
    pub fn is_operator(&self) -> bool {
        matches!(self, Principal::Operator)
    }
}

/// A plugin package sent to `POST /v1/plugins`, base64 already decoded by the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginUpload {
    /// The text of `plugin.toml`, unparsed (the backend validates it).
    pub manifest: String,
    /// The WebAssembly component (`plugin.wasm`) bytes.
    pub component: Vec<u8>,
    /// The text of `plugin.sig`, when the package is signed.
    pub signature: Option<String>,
}

/// Query of the CDR routes (`?since_ms=...&limit=...`), already validated as numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdrQuery {
    /// Only records whose call started at or after this time (ms since the Unix epoch).
    pub since_ms: Option<u64>,
    /// At most this many records (at least 1); the backend may impose a lower cap.
    pub limit: Option<u64>,
}

/// What the host implements so that the crate can serve the admin API.
///
/// The crate has already authenticated the caller, checked that it may use
/// the route and this tenant, percent-decoded path segments, lower-cased
/// `domain` (ASCII), parsed the body as a JSON **object** within the size
/// limit and, for `PUT /v1/tenants/{domain}`, checked that a `domain` in the
/// body equals the one in the path. Everything else about bodies (required
/// fields, types, semantic checks) is the backend's to validate; refuse with
/// [`ApiError::bad_request`] and a message naming the field.
///
/// Answers: `Ok(value)` is sent as JSON with 200 (201 for the `create_*` and
/// [`install_plugin`](AdminBackend::install_plugin) methods); `Ok(Value::Null)`
/// is sent as `204 No Content` (the natural answer of the `delete_*` methods).
/// `Err(e)` is sent as `e.status` with `{"error": {"code", "message"}}`.
///
/// Each method's documentation gives the JSON shape the crate (and the CLI)
/// expects; the CLI sends exactly the request shapes shown.
#[async_trait]
pub trait AdminBackend: Send + Sync + 'static {
    /// Maps a bearer token to a principal, or `None` for an unknown token (401).
    ///
    /// Called for every authenticated request: keep it cheap and compare
    /// secrets in constant time.
    fn authenticate(&self, bearer_token: &str) -> Option<Principal>;

    /// `GET /v1/health` (no authentication): e.g. `{"status": "ok", "version": "0.1.0"}`.
    /// Return [`ApiError::unavailable`] when the PBX is not healthy.
    async fn health(&self) -> Result<Value, ApiError>;

    /// `GET /v1/metrics` (operator): the metrics, rendered by the crate as Prometheus text.
    async fn metrics(&self) -> Result<Vec<Metric>, ApiError>;

    /// `GET /v1/tenants`: an array of tenant summaries, each an object with at
    /// least `"domain"`, e.g. `[{"domain": "a.test", "users": 3}]`. Return all
    /// of them; for a tenant admin the crate keeps only the entry whose
    /// `domain` is its own.
    async fn list_tenants(&self) -> Result<Value, ApiError>;

    /// `POST /v1/tenants` (operator): create a tenant from a document of the
    /// shape [`get_tenant`](AdminBackend::get_tenant) returns (at least
    /// `"domain"`); 409 if it exists. Returns the created tenant.
    async fn create_tenant(&self, body: Value) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}`: the whole tenant as one document, which is
    /// also the export format that [`put_tenant`](AdminBackend::put_tenant)
    /// accepts, e.g.
    /// `{"domain": "a.test", "language": "en", "users": [...], "dialplan": [...], "plugins": [...]}`
    /// with users, dial plan entries and tenant plugins in the shapes of the
    /// methods below (`users` must carry passwords for an export to round-trip).
    async fn get_tenant(&self, domain: &str) -> Result<Value, ApiError>;

    /// `PUT /v1/tenants/{domain}`: replace (import) the whole tenant with
    /// `body`. If the tenant does not exist it is created, but only when
    /// `may_create` (the caller is the operator); otherwise answer
    /// [`ApiError::forbidden`]. The check and the write must be one atomic
    /// step. `body["domain"]`, if present, already equals `domain`.
    /// Returns the stored tenant.
    async fn put_tenant(
        &self,
        domain: &str,
        body: Value,
        may_create: bool,
    ) -> Result<Value, ApiError>;

    /// `DELETE /v1/tenants/{domain}` (operator). Usually returns `Value::Null` (204).
    async fn delete_tenant(&self, domain: &str) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}/users`: an array of users,
    /// `[{"extension": "101", "display_name": "Alice"}]` (passwords may be left out).
    async fn list_users(&self, domain: &str) -> Result<Value, ApiError>;

    /// `POST /v1/tenants/{domain}/users`: body
    /// `{"extension": "101", "password": "secret", "display_name": "Alice"}`
    /// (`display_name` optional); 409 if the extension exists. Returns the user.
    async fn create_user(&self, domain: &str, body: Value) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}/users/{ext}`: one user, as in the list.
    async fn get_user(&self, domain: &str, ext: &str) -> Result<Value, ApiError>;

    /// `PUT /v1/tenants/{domain}/users/{ext}`: create or replace the user; body
    /// as for [`create_user`](AdminBackend::create_user) (`extension` may be
    /// left out; if present it must equal `ext`). Returns the user.
    async fn put_user(&self, domain: &str, ext: &str, body: Value) -> Result<Value, ApiError>;

    /// `DELETE /v1/tenants/{domain}/users/{ext}`. Usually returns `Value::Null` (204).
    async fn delete_user(&self, domain: &str, ext: &str) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}/dialplan`: an array of entries sorted by number,
    /// `[{"number": "100", "plugin": "attendant", "config": {"timeout_s": 20}}, {"number": "200", "user": "101"}]`.
    async fn get_dialplan(&self, domain: &str) -> Result<Value, ApiError>;

    /// `PUT /v1/tenants/{domain}/dialplan/{number}`: create or replace one
    /// entry; body `{"user": "101"}` or `{"plugin": "attendant", "config": {...}}`
    /// (`config` optional, values any JSON). `number` is percent-decoded
    /// (`*98`, `+4930...`). Returns the entry (with `"number"`).
    async fn put_dialplan_entry(
        &self,
        domain: &str,
        number: &str,
        body: Value,
    ) -> Result<Value, ApiError>;

    /// `DELETE /v1/tenants/{domain}/dialplan/{number}`. Usually returns `Value::Null` (204).
    async fn delete_dialplan_entry(&self, domain: &str, number: &str) -> Result<Value, ApiError>;

    /// `GET /v1/plugins` (operator): installed plugin versions,
    /// `[{"name": "attendant", "version": "1.2.0", "capabilities": ["kv"]}]`.
    async fn list_plugins(&self) -> Result<Value, ApiError>;

    /// `POST /v1/plugins` (operator): install a plugin version. The wire body is
    /// `{"manifest": "<plugin.toml text>", "component": "<base64 of plugin.wasm>"}`;
    /// the crate decodes it into `upload`. Returns `{"name": ..., "version": ...}`
    /// (201); 409 if that version is installed.
    async fn install_plugin(&self, upload: PluginUpload) -> Result<Value, ApiError>;

    /// `GET /v1/trust` (operator): the vendor keys of the trust store,
    /// `[{"signer": "acme", "key_id": "ed25519:...", "public": "base64"}]`.
    async fn list_trust(&self) -> Result<Value, ApiError>;

    /// `POST /v1/trust` (operator): trust a vendor key; the body is
    /// `{"public_key": "<text of the .pub file>"}`. 201 with the key.
    async fn add_trust(&self, public_key: String) -> Result<Value, ApiError>;

    /// `DELETE /v1/trust/{key_id}` (operator): stop trusting a key. Versions
    /// already installed stay installed.
    async fn remove_trust(&self, key_id: &str) -> Result<Value, ApiError>;

    /// `GET /v1/licence` (operator): the licence state, the capacity in
    /// force, what is in use, the next transition and the reminders sent.
    async fn licence_status(&self) -> Result<Value, ApiError>;

    /// `PUT /v1/licences/{name}` (operator): install or replace a licence
    /// file; the body is `{"licence": "<file text>"}`. Refused (400) unless
    /// it verifies and is for this site.
    async fn put_licence(&self, name: &str, text: String) -> Result<Value, ApiError>;

    /// `DELETE /v1/licences/{name}` (operator): remove a licence file.
    async fn delete_licence(&self, name: &str) -> Result<Value, ApiError>;

    /// `DELETE /v1/plugins/{name}/{version}` (operator); 409 while a tenant uses it.
    async fn uninstall_plugin(&self, name: &str, version: &str) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}/plugins`: the tenant's enabled plugins,
    /// `[{"name": "attendant", "version": "1.2.0", "previous_version": "1.1.0", "config": {}, "grants": ["kv"]}]`.
    async fn list_tenant_plugins(&self, domain: &str) -> Result<Value, ApiError>;

    /// `PUT /v1/tenants/{domain}/plugins/{name}`: enable, reconfigure or pin a
    /// version (a "swap"); body `{"version": "1.2.0", "config": {...}}`, both
    /// optional: no `version` means the newest installed (when enabling) or the
    /// current one; no `config` keeps the current configuration (empty when
    /// enabling). The version being replaced becomes the rollback target.
    /// Returns the tenant plugin as in the list.
    async fn put_tenant_plugin(
        &self,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError>;

    /// `POST /v1/tenants/{domain}/plugins/{name}/rollback`: go back to the
    /// previous version (409 if there is none). Returns the tenant plugin.
    async fn rollback_tenant_plugin(&self, domain: &str, name: &str) -> Result<Value, ApiError>;

    /// `DELETE /v1/tenants/{domain}/plugins/{name}`: disable. Usually `Value::Null` (204).
    async fn delete_tenant_plugin(&self, domain: &str, name: &str) -> Result<Value, ApiError>;

    /// `PUT /v1/tenants/{domain}/plugins/{name}/grants` (operator): body
    /// `{"grants": ["kv", "recordings"]}`, the complete set of capabilities
    /// granted to the plugin in this tenant. Returns the tenant plugin.
    async fn put_tenant_plugin_grants(
        &self,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}/prompts`: the tenant's prompt overrides,
    /// sorted by language and name,
    /// `[{"language": "de", "name": "welcome", "size_bytes": 16044, "duration_ms": 1000}]`.
    async fn list_prompts(&self, domain: &str) -> Result<Value, ApiError>;

    /// `PUT /v1/tenants/{domain}/prompts/{language}/{name}`: store `wav` as the
    /// tenant's override of prompt `name` (percent-decoded, may contain `/`)
    /// in `language`, replacing any previous one; calls started afterwards
    /// play it. The wire body is `{"wav": "<base64 of the WAV file>"}`; the
    /// crate decodes it. The backend checks the language, the name and the
    /// file (a WAV the media engine plays, size and length limits) and
    /// refuses with [`ApiError::bad_request`] naming what is wrong. Returns
    /// the override as in the list.
    async fn put_prompt(
        &self,
        domain: &str,
        language: &str,
        name: &str,
        wav: Vec<u8>,
    ) -> Result<Value, ApiError>;

    /// `DELETE /v1/tenants/{domain}/prompts/{language}/{name}`: remove the
    /// override (404 if there is none); calls fall back to the next prompt
    /// of the language chain (the stock one). Usually `Value::Null` (204).
    async fn delete_prompt(
        &self,
        domain: &str,
        language: &str,
        name: &str,
    ) -> Result<Value, ApiError>;

    /// `GET /v1/calls` (operator, `domain` = `None`) and
    /// `GET /v1/tenants/{domain}/calls`: an array of live calls, e.g.
    /// `[{"call_id": "...", "tenant": "a.test", "from": "101", "to": "100", "state": "answered", "start_ms": 1700000000000}]`.
    async fn list_calls(&self, domain: Option<&str>) -> Result<Value, ApiError>;

    /// `GET /v1/tenants/{domain}/registrations`: an array of bindings,
    /// `[{"user": "101", "contact": "sip:101@192.0.2.7:5062", "expires_at_unix": 1700000000, "source": "udp:192.0.2.7:5062", "user_agent": "..."}]`.
    async fn list_registrations(&self, domain: &str) -> Result<Value, ApiError>;

    /// `GET /v1/cdrs` (operator, `domain` = `None`) and
    /// `GET /v1/tenants/{domain}/cdrs`: an array of call detail records,
    /// oldest first, each an object such as
    /// `{"call_id", "tenant", "from", "to", "start_ms", "answer_ms", "end_ms", "disposition", "plugin", "plugin_version", ...}`.
    /// Values should be scalars; nested values are written as JSON text in CSV.
    async fn list_cdrs(&self, domain: Option<&str>, query: CdrQuery) -> Result<Value, ApiError>;
}
