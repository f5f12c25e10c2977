//! Per-call store data: the capabilities a plugin instance sees, and the
//! meters that enforce its memory and CPU limits.
//!
//! # CPU accounting
//!
//! The limit is on time spent *running wasm*, not on time spent waiting in an
//! async host call (a plugin may wait 30 s in `collect-digits`). A store call
//! hook ([`CpuMeter::on_hook`]) closes the running wasm segment whenever
//! control leaves wasm and reopens it when control comes back, so every host
//! excursion (a plugboard call, a WASI call, a libcall) is excluded from the
//! time. Two budgets apply:
//!
//! - *per stretch*: wasm time since the plugin last called a plugboard
//!   function ([`CpuMeter::reset_stretch`], called by every host function in
//!   `host/`). WASI calls and libcalls do not reset it (wasmtime reports its
//!   own epoch check as a host call, so the hook alone cannot tell).
//! - *per call*: total wasm time of the run, which stops a plugin that spins
//!   but calls a cheap host function (log, config) every few milliseconds.
//!
//! The engine's epoch ticker wakes the store's deadline callback once per
//! tick while wasm runs; it stops the instance when [`CpuMeter::over_limit`],
//! and otherwise yields to tokio (`yield_now`, which also lets the timer
//! driver run) so a busy plugin cannot starve other calls on its thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{CallHook, ResourceLimiter};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::types::{CallControl, HttpClient, NoServices, PluginStorage, TenantServices};

/// Tracks time spent in wasm for one call (see the module docs).
#[derive(Debug)]
pub(crate) struct CpuMeter {
    stretch_limit: Duration,
    total_limit: Duration,
    /// Closed wasm segments, whole call.
    used: Duration,
    /// Closed wasm segments since the last plugboard host call.
    stretch: Duration,
    /// Start of the wasm segment running now.
    open: Option<Instant>,
}

impl CpuMeter {
    pub(crate) fn new(stretch_limit: Duration, total_limit: Duration) -> Self {
        CpuMeter {
            stretch_limit,
            total_limit,
            used: Duration::ZERO,
            stretch: Duration::ZERO,
            open: None,
        }
    }

    /// Record a host/wasm transition.
    pub(crate) fn on_hook(&mut self, hook: CallHook, now: Instant) {
        if hook.entering_host() {
            if let Some(start) = self.open.take() {
                let d = now.saturating_duration_since(start);
                self.used += d;
                self.stretch += d;
            }
        } else if self.open.is_none() {
            self.open = Some(now);
        }
    }

    /// The plugin called a plugboard function: a new stretch starts.
    pub(crate) fn reset_stretch(&mut self) {
        self.stretch = Duration::ZERO;
    }

    /// Whether the plugin is over a budget (counting the open segment up to `now`).
    pub(crate) fn over_limit(&self, now: Instant) -> bool {
        let open = self
            .open
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        self.stretch + open > self.stretch_limit || self.used + open > self.total_limit
    }

    /// Total wasm time so far (closed segments only).
    pub(crate) fn used(&self) -> Duration {
        self.used
    }
}

/// Caps linear memory and table growth of one instance and remembers a refusal.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_memory: usize,
    max_table_elements: usize,
    /// Set when a grow was refused.
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(max_memory: usize) -> Self {
        MemoryLimiter {
            max_memory,
            max_table_elements: 100_000,
            hit: false,
        }
    }
}

/// The error a refused grow traps with; [`crate::Plugin::run_call`]
/// classifies it as a memory fault.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) desired: usize,
    pub(crate) limit: usize,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit exceeded: wanted {} bytes, cap {} bytes",
            self.desired, self.limit
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            // Trap right away instead of returning `false`: a Rust guest
            // would abort with `unreachable`, which is indistinguishable
            // from any other abort.
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.max_memory,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.max_table_elements,
            }));
        }
        Ok(true)
    }
}

/// Store data of one plugin instance (one call).
pub(crate) struct PluginState {
    pub(crate) control: Arc<dyn CallControl>,
    /// Outbound HTTP with the plugin's allow-list; `None` denies every request.
    pub(crate) http: Option<Arc<dyn HttpClient>>,
    pub(crate) storage: Arc<dyn PluginStorage>,
    /// Mail, message waiting, clock, speech and directory (contract 0.1.2).
    pub(crate) services: Arc<dyn TenantServices>,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) tenant: String,
    pub(crate) call_id: String,
    pub(crate) plugin: Arc<str>,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) cpu: CpuMeter,
    /// Set when the epoch callback stopped the instance for CPU time.
    pub(crate) cpu_exceeded: bool,
    pub(crate) stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

/// How many bytes of guest stderr (panic messages) are kept for the fault log.
pub(crate) const STDERR_CAPACITY: usize = 16 * 1024;

impl PluginState {
    /// State for one call. WASI is deny-by-default (see `crate::runtime`):
    /// no args, env, preopens or network; stdout is discarded; stderr is
    /// captured (bounded) for fault logs.
    pub(crate) fn new(
        control: Arc<dyn CallControl>,
        storage: Arc<dyn PluginStorage>,
        config: Vec<(String, String)>,
        (tenant, call_id): (String, String),
        plugin: Arc<str>,
        limiter: MemoryLimiter,
        cpu: CpuMeter,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        PluginState {
            control,
            http: None,
            storage,
            services: Arc::new(NoServices),
            config,
            tenant,
            call_id,
            plugin,
            limiter,
            cpu,
            cpu_exceeded: false,
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// What the guest wrote to stderr, lossily decoded and trimmed.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn waiting_in_the_host_is_not_counted() {
        let t0 = Instant::now();
        let mut m = CpuMeter::new(200 * MS, 1000 * MS);
        m.on_hook(CallHook::CallingWasm, t0);
        m.on_hook(CallHook::CallingHost, t0 + 10 * MS);
        m.reset_stretch();
        // 30 s in a host call.
        m.on_hook(CallHook::ReturningFromHost, t0 + 30_000 * MS);
        assert!(!m.over_limit(t0 + 30_050 * MS));
        assert_eq!(m.used(), 10 * MS);
    }

    #[test]
    fn a_long_stretch_is_over_the_limit_even_across_libcalls() {
        let t0 = Instant::now();
        let mut m = CpuMeter::new(200 * MS, 1000 * MS);
        m.on_hook(CallHook::CallingWasm, t0);
        // Epoch checks every 10 ms look like host calls but do not reset.
        let mut now = t0;
        for _ in 0..15 {
            now += 10 * MS;
            m.on_hook(CallHook::CallingHost, now);
            m.on_hook(CallHook::ReturningFromHost, now);
        }
        assert!(!m.over_limit(now));
        assert!(m.over_limit(now + 60 * MS));
    }

    #[test]
    fn many_short_stretches_exhaust_the_call_budget() {
        let t0 = Instant::now();
        let mut m = CpuMeter::new(200 * MS, 1000 * MS);
        let mut now = t0;
        for _ in 0..6 {
            m.on_hook(CallHook::ReturningFromHost, now);
            now += 190 * MS;
            m.on_hook(CallHook::CallingHost, now);
            m.reset_stretch();
        }
        m.on_hook(CallHook::ReturningFromHost, now);
        assert_eq!(m.used(), 1140 * MS);
        assert!(m.over_limit(now));
    }

    #[test]
    fn limiter_refuses_growth_past_the_cap() {
        let mut l = MemoryLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        let err = l
            .memory_growing(1 << 20, (1 << 20) + 65536, None)
            .unwrap_err();
        assert!(err.is::<MemoryLimitExceeded>());
        assert!(l.hit);
        assert!(l.table_growing(0, 10, None).unwrap());
        assert!(l.table_growing(0, 1_000_000, None).is_err());
    }
}
