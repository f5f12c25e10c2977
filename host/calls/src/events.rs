//! The event bus: what happens in a tenant (calls started, answered and
//! ended, registrations, plugin faults, recordings) is delivered to the
//! tenant's listener plugins.
//!
//! Each tenant has one queue (bounded, [`QUEUE`] events) and one worker task
//! that hands the events, in order, to each listener plugin of the tenant in
//! a fresh instance (with the `http` capability when granted). Publishing
//! never blocks a call: when the queue is full the event is dropped and
//! counted. Nothing is queued for a tenant without listeners.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use plugboard_plugins::{CallRun, Event, EventKind, HttpClient, Role, RunOutcome};
use plugboard_store::Scope;
use plugboard_tenants::Tenant;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::plugin_call::ScopedStorage;
use crate::screening::NoCall;
use crate::server::Core;

/// Events waiting per tenant before new ones are dropped.
pub const QUEUE: usize = 4096;

/// Per-tenant queues of events for listener plugins.
#[derive(Default)]
pub struct EventBus {
    queues: Mutex<HashMap<String, mpsc::Sender<Event>>>,
    /// Events handed to a listener run.
    pub delivered: AtomicU64,
    /// Events dropped because a tenant's queue was full.
    pub dropped: AtomicU64,
}

/// Names of the tenant's plugins whose installed version is a listener.
pub(crate) fn plugins_with_role(core: &Core, tenant: &Tenant, role: Role) -> Vec<String> {
    tenant
        .plugins
        .iter()
        .filter(|p| {
            crate::tenants::installed_for(&core.catalog, p).is_ok_and(|i| i.plugin.role() == role)
        })
        .map(|p| p.name.clone())
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl EventBus {
    /// Queues `kind` for the listener plugins of `tenant` (no-op without any).
    pub fn publish(&self, core: &Arc<Core>, tenant: &Tenant, kind: EventKind) {
        if plugins_with_role(core, tenant, Role::Listener).is_empty() {
            return;
        }
        let event = Event {
            tenant: tenant.domain.clone(),
            time_ms: now_ms(),
            kind,
        };
        let mut queues = self.queues.lock().expect("event queues lock");
        let tx = queues.entry(tenant.domain.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(worker(Arc::downgrade(core), tenant.domain.clone(), rx));
            tx
        });
        if tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                warn!(tenant = %tenant.domain, dropped = n, "event queue full: events dropped");
            }
        }
    }
}

/// Delivers one tenant's events in order; ends when the host shuts down.
async fn worker(core: Weak<Core>, domain: String, mut rx: mpsc::Receiver<Event>) {
    while let Some(event) = rx.recv().await {
        let Some(core) = core.upgrade() else { return };
        // The tenant as it is now: listeners enabled or swapped since the
        // event was queued apply.
        let Some(tenant) = core.tenants.get(&domain) else {
            continue;
        };
        for name in plugins_with_role(&core, &tenant, Role::Listener) {
            deliver(&core, &tenant, &name, event.clone()).await;
        }
    }
}

async fn deliver(core: &Arc<Core>, tenant: &Tenant, name: &str, event: Event) {
    let resolved = match crate::tenants::resolve(&core.catalog, tenant, name, &[]) {
        Ok(r) => r,
        Err(e) => {
            warn!(tenant = %tenant.domain, plugin = %name, "listener not run: {e}");
            return;
        }
    };
    if let Err(e) = core.licences.entitled(&resolved.installed, &tenant.domain) {
        warn!(tenant = %tenant.domain, plugin = %name, "listener not run: {e}");
        return;
    }
    let binding = tenant.plugin(name);
    let http: Option<Arc<dyn HttpClient>> = binding
        .filter(|b| b.grants.iter().any(|g| g == "http"))
        .map(|b| Arc::new(core.http.for_plugin(b.http_hosts.clone())) as Arc<dyn HttpClient>);
    let _active = resolved.installed.begin_call();
    let run = CallRun {
        control: Arc::new(NoCall),
        storage: Arc::new(ScopedStorage {
            store: core.store.clone(),
            scope: Scope::new(tenant.domain.clone(), name),
        }),
        config: resolved.config,
        log_fields: (tenant.domain.clone(), format!("event-{}", event.time_ms)),
        limits: crate::tenants::run_limits(tenant),
        services: None,
    };
    core.events.delivered.fetch_add(1, Ordering::Relaxed);
    match resolved.installed.plugin.run_event(run, http, event).await {
        RunOutcome::Completed => {}
        RunOutcome::PluginError(e) => {
            info!(tenant = %tenant.domain, plugin = %name, "listener returned an error: {e}")
        }
        RunOutcome::Fault(f) => {
            core.stats.tenant(&tenant.domain, |t| t.plugin_faults += 1);
            warn!(tenant = %tenant.domain, plugin = %name, kind = f.kind.label(), "listener fault: {}", f.message);
        }
    }
}
