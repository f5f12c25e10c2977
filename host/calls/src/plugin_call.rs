//! Calls handled by a plugin: the host side of the `call` interface
//! ([`CallControl`]) and the storage scoped to (tenant, plugin).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plugboard_media::{
    PlayOutcome as MediaPlay, RecordOptions as MediaRecord, RecordStop as MStop,
};
use plugboard_plugins::{
    CallControl, CallError, CallInfo, CallRun, CollectOptions, Collected, DialOutcome, Party,
    PlayOutcome, PluginStorage, Prompt, RecordOptions, RecordStop, RecordingInfo, RecordingMeta,
    RunOutcome, StorageError,
};
use plugboard_store::{Scope, Store, StoreError};
use tracing::{info, warn};

use crate::call::{CallShared, DialResult, dial_user};

/// Runs plugin `name` on the call, then ends the call.
pub async fn run(shared: &Arc<CallShared>, name: &str, config: Vec<(String, String)>) {
    let core = &shared.core;
    let domain = shared.tenant.domain.as_str();
    if let Err(left) = core.faults.check(domain, name, Instant::now()) {
        warn!(plugin = %name, "plugin disabled for this tenant after repeated faults");
        shared
            .end_a_retry(503, "plugin disabled after repeated faults", left)
            .await;
        return;
    }
    let resolved = match crate::tenants::resolve(&core.catalog, &shared.tenant, name, &config) {
        Ok(r) => r,
        Err(e) => {
            warn!(plugin = %name, "cannot run plugin: {e}");
            shared
                .end_a(503, "Service Unavailable", "plugin not available")
                .await;
            return;
        }
    };
    if let Err(e) = core.licences.entitled(&resolved.installed, domain) {
        warn!(plugin = %name, "not licensed: {e}");
        shared
            .end_a_retry(
                503,
                "plugin not licensed for this tenant",
                Duration::from_secs(300),
            )
            .await;
        return;
    }
    let version = resolved.installed.manifest.version.to_string();
    let plugin = resolved.installed.plugin.clone();
    // Counts this call against the version until the run ends (uninstall and
    // swap never touch it; the compiled code lives as long as this guard).
    let _active = resolved.installed.begin_call();
    let config = resolved.config;
    {
        let mut st = shared.state.lock().expect("call state");
        st.plugin = Some(name.to_string());
        st.plugin_version = Some(version.clone());
    }
    if let Some(live) = core
        .live
        .lock()
        .expect("live lock")
        .get_mut(shared.call_id())
    {
        live.plugin = Some(name.to_string());
        live.plugin_version = Some(version.clone());
    }
    core.stats.tenant(domain, |t| t.plugin_runs += 1);
    let scope = Scope {
        tenant: shared.tenant.domain.clone(),
        plugin: name.to_string(),
    };
    let control = Arc::new(PluginCall {
        shared: shared.clone(),
        scope: scope.clone(),
    });
    let services = Arc::new(crate::services::RunServices {
        core: core.clone(),
        tenant: shared.tenant.clone(),
        scope: scope.clone(),
    });
    let storage = Arc::new(ScopedStorage {
        store: core.store.clone(),
        scope,
    });
    let call_id = shared
        .invite
        .headers
        .call_id()
        .unwrap_or_default()
        .to_string();
    let outcome = plugin
        .run_call(CallRun {
            control,
            storage,
            config,
            log_fields: (shared.tenant.domain.clone(), call_id),
            limits: crate::tenants::run_limits(&shared.tenant),
            services: Some(services),
        })
        .await;
    let disposition = match &outcome {
        RunOutcome::Completed => "completed".to_string(),
        RunOutcome::PluginError(e) => {
            info!(plugin = %name, "plugin returned an error: {e}");
            "plugin-error".to_string()
        }
        RunOutcome::Fault(f) => {
            core.stats.plugin_faults.fetch_add(1, Ordering::Relaxed);
            core.stats.tenant(domain, |t| t.plugin_faults += 1);
            warn!(plugin = %name, %version, kind = ?f.kind, "plugin fault: {}", f.message);
            core.events.publish(
                core,
                &shared.tenant,
                plugboard_plugins::EventKind::PluginFault {
                    plugin: name.to_string(),
                    version: version.clone(),
                    kind: f.kind.label().to_string(),
                    message: f.message.clone(),
                },
            );
            format!("fault:{}", f.kind.label())
        }
    };
    let faulted = matches!(outcome, RunOutcome::Fault(_));
    if let Some(backoff) = core.faults.record(domain, name, faulted, Instant::now()) {
        core.events.publish(
            core,
            &shared.tenant,
            plugboard_plugins::EventKind::PluginDisabled {
                plugin: name.to_string(),
                backoff_s: backoff.as_secs() as u32,
            },
        );
        warn!(
            plugin = %name,
            backoff_s = backoff.as_secs(),
            event = "plugin-disabled",
            "plugin disabled for this tenant after {} faults in a row",
            crate::faults::THRESHOLD
        );
    }
    shared.state.lock().expect("call state").disposition = Some(disposition);
    match outcome {
        RunOutcome::Completed => {
            shared
                .end_a(480, "Temporarily Unavailable", "plugin ended")
                .await
        }
        _ => {
            // Fallback: an answered caller hears the error prompt, then BYE; an
            // unanswered one gets 500 with a Reason.
            let answered = shared.state.lock().expect("call state").answered;
            if answered
                && !shared.is_gone()
                && let Ok(a) = core.prompts.stock_for(&shared.tenant, "error").await
            {
                let _ = shared.media_a.play(&a, false).await;
            }
            shared
                .end_a(500, "Server Internal Error", "plugin failed")
                .await;
        }
    }
}

struct PluginCall {
    shared: Arc<CallShared>,
    scope: Scope,
}

impl PluginCall {
    fn live(&self) -> Result<(), CallError> {
        if self.shared.is_gone() {
            Err(CallError::HungUp)
        } else {
            Ok(())
        }
    }
}

fn party(n: &plugboard_sip::NameAddr) -> Party {
    Party {
        user: n.uri.user_unescaped().unwrap_or_default(),
        display_name: n.display.clone(),
        uri: n.uri.to_string(),
    }
}

/// Headers a plugin may read (call-info.headers).
/// Added to `call-info.headers` when the call came from a trunk (its name):
/// the caller ID is the peer PBX's word, not an authenticated user.
pub const TRUNK_HEADER: &str = "X-Plugboard-Trunk";
const TRUNK_HEADER_PREFIX: &str = "x-plugboard-";

const SELECTED_HEADERS: &[&str] = &[
    "User-Agent",
    "Diversion",
    "History-Info",
    "Subject",
    "Priority",
];

#[async_trait::async_trait]
impl CallControl for PluginCall {
    async fn answer(&self) -> Result<(), CallError> {
        self.live()?;
        if self.shared.answer() {
            Ok(())
        } else {
            Err(CallError::HungUp)
        }
    }

    async fn hangup(&self) {
        self.shared.end_a(200, "OK", "plugin hung up").await;
    }

    async fn play(&self, prompts: Vec<Prompt>, barge_in: bool) -> Result<PlayOutcome, CallError> {
        self.live()?;
        self.answer().await?;
        let core = &self.shared.core;
        let mut parts = Vec::with_capacity(prompts.len());
        for p in prompts {
            let audio = match p {
                Prompt::Stock(n) => core.prompts.stock_for(&self.shared.tenant, &n).await,
                Prompt::Tenant(n) => core.prompts.tenant_for(&self.shared.tenant, &n).await,
                Prompt::Recording(id) => {
                    core.prompts
                        .recording(core.store.as_ref(), &self.scope, &id)
                        .await
                }
                Prompt::Silence(ms) => Ok(plugboard_media::Audio::silence(ms.min(60_000))),
            };
            parts.push(audio?);
        }
        let audio = plugboard_media::Audio::concat(&parts);
        match self.shared.media_a.play(&audio, barge_in).await {
            MediaPlay::Completed => Ok(PlayOutcome::Completed),
            MediaPlay::Interrupted => Ok(PlayOutcome::Interrupted),
            MediaPlay::Closed => Err(CallError::HungUp),
        }
    }

    async fn collect_digits(&self, o: CollectOptions) -> Result<Collected, CallError> {
        self.live()?;
        if o.max_digits == 0 || o.max_digits > 64 {
            return Err(CallError::Invalid("max-digits must be 1..=64".into()));
        }
        let mut digits = String::new();
        let mut first = true;
        loop {
            let wait = if first {
                o.first_digit_timeout_ms
            } else {
                o.inter_digit_timeout_ms
            };
            match self
                .shared
                .media_a
                .next_digit(Duration::from_millis(wait as u64))
                .await
            {
                Err(_) => return Err(CallError::HungUp),
                Ok(None) => {
                    return Ok(Collected {
                        digits,
                        terminator: None,
                        timed_out: true,
                    });
                }
                Ok(Some(d)) => {
                    first = false;
                    if o.terminators.contains(d) {
                        return Ok(Collected {
                            digits,
                            terminator: Some(d),
                            timed_out: false,
                        });
                    }
                    digits.push(d);
                    if digits.len() as u32 >= o.max_digits {
                        return Ok(Collected {
                            digits,
                            terminator: None,
                            timed_out: false,
                        });
                    }
                }
            }
        }
    }

    async fn record(&self, o: RecordOptions) -> Result<Option<RecordingInfo>, CallError> {
        self.live()?;
        self.answer().await?;
        let core = &self.shared.core;
        if o.beep
            && let Ok(b) = core.prompts.stock_for(&self.shared.tenant, "beep").await
            && let MediaPlay::Closed = self.shared.media_a.play(&b, false).await
        {
            return Err(CallError::HungUp);
        }
        self.shared.media_a.clear_digits();
        let rec = self
            .shared
            .media_a
            .record(MediaRecord {
                max_ms: o.max_length_ms.clamp(1, 3_600_000),
                silence_ms: o.silence_timeout_ms,
                stop_keys: o.stop_keys.clone(),
            })
            .await;
        let duration_ms = (rec.samples.len() as u64 * 1000 / 8000) as u32;
        let stopped_by = match rec.stopped_by {
            MStop::MaxLength => RecordStop::MaxLength,
            MStop::Silence => RecordStop::Silence,
            MStop::Key => RecordStop::Key,
            MStop::Hangup => RecordStop::Hangup,
        };
        if duration_ms < o.min_length_ms || rec.samples.is_empty() {
            info!(duration_ms, "recording shorter than the minimum: discarded");
            return Ok(None);
        }
        let wav = plugboard_media::wav::write_wav_pcm16(&rec.samples);
        let meta = put_recording(core, &self.shared.tenant, &self.scope, wav, duration_ms).await?;
        info!(id = %meta.id, duration_ms, "recording stored");
        core.events.publish(
            core,
            &self.shared.tenant,
            plugboard_plugins::EventKind::RecordingStored {
                plugin: self.scope.plugin.clone(),
                id: meta.id.clone(),
                duration_ms,
            },
        );
        Ok(Some(RecordingInfo {
            id: meta.id,
            duration_ms,
            stopped_by,
            key: rec.key,
        }))
    }

    async fn dial(&self, target: String, timeout_ms: u32) -> Result<DialOutcome, CallError> {
        self.live()?;
        let timeout = Duration::from_millis(timeout_ms.clamp(1000, 600_000) as u64);
        match dial_user(&self.shared, &target, timeout).await {
            DialResult::Answered => Ok(DialOutcome::Answered),
            DialResult::Busy => Ok(DialOutcome::Busy),
            DialResult::NoAnswer => Ok(DialOutcome::NoAnswer),
            DialResult::Failed(_) => Ok(DialOutcome::Failed),
            DialResult::CallerGone => Err(CallError::HungUp),
        }
    }

    async fn transfer(&self, target: String) -> Result<(), CallError> {
        self.live()?;
        match self.shared.tenant.route(&target) {
            Some(plugboard_tenants::DialTarget::User(ext)) => {
                match dial_user(&self.shared, &ext, Duration::from_secs(60)).await {
                    DialResult::CallerGone => Err(CallError::HungUp),
                    _ => Ok(()),
                }
            }
            Some(plugboard_tenants::DialTarget::Plugin { .. }) => Err(CallError::Denied(
                "transfer to another plugin is not supported in contract 0.1".into(),
            )),
            None => Err(CallError::NotFound(format!("no such number: {target}"))),
        }
    }

    fn info(&self) -> CallInfo {
        let inv = &self.shared.invite;
        let from = inv.headers.from_addr().unwrap_or_default();
        let to = inv.headers.to_addr().unwrap_or_default();
        let mut callee = party(&to);
        callee.user = inv.uri.user_unescaped().unwrap_or(callee.user);
        let mut headers: Vec<(String, String)> = inv
            .headers
            .iter()
            .filter(|(n, _)| {
                let lower = n.to_ascii_lowercase();
                // X-Plugboard-* is the host's own word; a caller cannot send it.
                (SELECTED_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(n))
                    || lower.starts_with("x-"))
                    && !lower.starts_with(TRUNK_HEADER_PREFIX)
            })
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        if self.shared.peer_a.transport == plugboard_sip::transaction::Transport::Udp
            && let Some(trunk) = self.shared.tenant.trunk_at(self.shared.peer_a.addr)
        {
            headers.push((TRUNK_HEADER.to_string(), trunk.name.clone()));
        }
        CallInfo {
            call_id: inv.headers.call_id().unwrap_or_default().to_string(),
            caller: party(&from),
            callee,
            tenant: self.shared.tenant.domain.clone(),
            redirect_reason: self.redirect().map(|r| r.reason),
            headers,
        }
    }

    fn redirect(&self) -> Option<plugboard_plugins::Redirection> {
        let from_rules = self
            .shared
            .state
            .lock()
            .expect("call state")
            .redirect
            .clone();
        from_rules.or_else(|| {
            plugboard_sip::redirect::redirection_of(
                &self.shared.invite.uri,
                &self.shared.invite.headers,
            )
            .map(|r| plugboard_plugins::Redirection {
                original: r.original,
                reason: r.reason,
                source: r.source.to_string(),
            })
        })
    }
}

/// Stores a recording of (tenant, plugin) within the tenant's storage quota
/// (`limits.storage_mb`).
pub(crate) async fn put_recording(
    core: &crate::server::Core,
    tenant: &plugboard_tenants::Tenant,
    scope: &Scope,
    wav: Vec<u8>,
    duration_ms: u32,
) -> Result<plugboard_store::RecordingMeta, CallError> {
    if let Some(mb) = tenant.limits.storage_mb {
        let used = core
            .store
            .tenant_recording_bytes(&tenant.domain)
            .await
            .map_err(|e| CallError::Failed(format!("storage: {e}")))?;
        if used + wav.len() as u64 > mb * 1024 * 1024 {
            warn!(
                used,
                quota_mb = mb,
                "tenant storage quota reached: recording discarded"
            );
            return Err(CallError::Denied(
                "the tenant's storage quota is full".into(),
            ));
        }
    }
    core.store
        .recording_put(scope, wav, duration_ms)
        .await
        .map_err(|e| CallError::Failed(format!("storing the recording: {e}")))
}

pub(crate) struct ScopedStorage {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) scope: Scope,
}

fn storage_err(e: StoreError) -> StorageError {
    match e {
        StoreError::InvalidKey(k) => StorageError::InvalidKey(k),
        StoreError::QuotaExceeded => StorageError::QuotaExceeded,
        other => StorageError::Backend(other.to_string()),
    }
}

fn meta(m: plugboard_store::RecordingMeta) -> RecordingMeta {
    RecordingMeta {
        id: m.id,
        duration_ms: m.duration_ms,
        created_ms: m.created_ms,
        size_bytes: m.size_bytes,
    }
}

#[async_trait::async_trait]
impl PluginStorage for ScopedStorage {
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.store
            .kv_get(&self.scope, key)
            .await
            .map_err(storage_err)
    }
    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.store
            .kv_set(&self.scope, key, &value)
            .await
            .map_err(storage_err)
    }
    async fn kv_delete(&self, key: &str) -> Result<bool, StorageError> {
        self.store
            .kv_delete(&self.scope, key)
            .await
            .map_err(storage_err)
    }
    async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.store
            .kv_list(&self.scope, prefix)
            .await
            .map_err(storage_err)
    }
    async fn recording_get(&self, id: &str) -> Result<Option<RecordingMeta>, StorageError> {
        Ok(self
            .store
            .recording_get(&self.scope, id)
            .await
            .map_err(storage_err)?
            .map(|(m, _)| meta(m)))
    }
    async fn recording_list(&self) -> Result<Vec<RecordingMeta>, StorageError> {
        Ok(self
            .store
            .recording_list(&self.scope)
            .await
            .map_err(storage_err)?
            .into_iter()
            .map(meta)
            .collect())
    }
    async fn recording_delete(&self, id: &str) -> Result<bool, StorageError> {
        self.store
            .recording_delete(&self.scope, id)
            .await
            .map_err(storage_err)
    }
}
