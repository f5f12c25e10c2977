//! Call screening: before a new call is routed, every screener plugin of the
//! tenant (in name order) may allow it, refuse it with a status, or divert
//! it to another number of the tenant. Each screener gets [`BUDGET`]; one
//! that takes longer or faults lets the call through (anti-spam must never
//! take the PBX down with it) and the fault is logged and counted.

use std::sync::Arc;
use std::time::Duration;

use plugboard_plugins::{
    CallControl, CallError, CallInfo, CallRun, CollectOptions, Collected, DialOutcome, Party,
    PlayOutcome, Prompt, RecordOptions, RecordingInfo, Role, ScreenRequest, Verdict,
};
use plugboard_store::Scope;
use plugboard_tenants::Tenant;
use tracing::{info, warn};

use crate::plugin_call::ScopedStorage;
use crate::server::Core;

/// Longest a screener may take for one call.
pub const BUDGET: Duration = Duration::from_millis(200);

/// What screening decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Screened {
    /// Route this number (the dialled one, or a screener's divert target).
    Route(String),
    /// Refuse with this status and reason.
    Reject(u16, String),
}

/// Runs the tenant's screeners on a new call to `number`.
pub async fn screen(
    core: &Arc<Core>,
    tenant: &Tenant,
    number: &str,
    request: ScreenRequest,
) -> Screened {
    for name in crate::events::plugins_with_role(core, tenant, Role::Screener) {
        let resolved = match crate::tenants::resolve(&core.catalog, tenant, &name, &[]) {
            Ok(r) => r,
            Err(e) => {
                warn!(plugin = %name, "screener not run: {e}");
                continue;
            }
        };
        if let Err(e) = core.licences.entitled(&resolved.installed, &tenant.domain) {
            warn!(plugin = %name, "screener not run: {e}");
            continue;
        }
        let _active = resolved.installed.begin_call();
        let run = CallRun {
            control: Arc::new(NoCall),
            storage: Arc::new(ScopedStorage {
                store: core.store.clone(),
                scope: Scope::new(tenant.domain.clone(), name.clone()),
            }),
            config: resolved.config,
            log_fields: (tenant.domain.clone(), request.call_id.clone()),
            limits: crate::tenants::run_limits(tenant),
            services: None,
        };
        let verdict = tokio::time::timeout(
            BUDGET,
            resolved.installed.plugin.run_screen(run, request.clone()),
        )
        .await;
        match verdict {
            Ok(Ok(Verdict::Allow)) => {}
            Ok(Ok(Verdict::Reject { code, reason })) => {
                let code = code.clamp(400, 699);
                info!(plugin = %name, code, "call refused by screener");
                return Screened::Reject(code, reason);
            }
            Ok(Ok(Verdict::Divert(target))) => {
                info!(plugin = %name, %target, "call diverted by screener");
                return Screened::Route(target);
            }
            Ok(Err(f)) => {
                core.stats.tenant(&tenant.domain, |t| t.plugin_faults += 1);
                warn!(plugin = %name, kind = f.kind.label(), "screener fault, call allowed: {}", f.message);
            }
            Err(_) => {
                core.stats.tenant(&tenant.domain, |t| t.plugin_faults += 1);
                warn!(plugin = %name, budget_ms = BUDGET.as_millis() as u64, "screener too slow, call allowed");
            }
        }
    }
    Screened::Route(number.to_string())
}

/// Call control for plugins that have no call (screeners, listeners): the
/// catalog refuses such components if they import `call`, so this is only
/// a safe default.
pub(crate) struct NoCall;

fn denied() -> CallError {
    CallError::Denied("no call in this plugin role".into())
}

#[async_trait::async_trait]
impl CallControl for NoCall {
    async fn answer(&self) -> Result<(), CallError> {
        Err(denied())
    }
    async fn hangup(&self) {}
    async fn play(&self, _: Vec<Prompt>, _: bool) -> Result<PlayOutcome, CallError> {
        Err(denied())
    }
    async fn collect_digits(&self, _: CollectOptions) -> Result<Collected, CallError> {
        Err(denied())
    }
    async fn record(&self, _: RecordOptions) -> Result<Option<RecordingInfo>, CallError> {
        Err(denied())
    }
    async fn dial(&self, _: String, _: u32) -> Result<DialOutcome, CallError> {
        Err(denied())
    }
    async fn transfer(&self, _: String) -> Result<(), CallError> {
        Err(denied())
    }
    fn info(&self) -> CallInfo {
        let nobody = Party {
            user: String::new(),
            display_name: None,
            uri: String::new(),
        };
        CallInfo {
            call_id: String::new(),
            caller: nobody.clone(),
            callee: nobody,
            tenant: String::new(),
            redirect_reason: None,
            headers: Vec::new(),
        }
    }
}
