//! The engine, the component cache, and one plugin run per call.
//!
//! Lifecycle (after spin's factors): [`Runtime::new`] builds one engine and one
//! linker for the process; [`Runtime::load`] compiles (or loads from the disk
//! cache), validates and pre-instantiates a component once per plugin version;
//! [`Plugin::run_call`] instantiates it in a fresh store for every call.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use crate::bindings::UnifiedMessagingPre as CallFlowPre;
use crate::bindings::listener_world::ListenerPre;
use crate::bindings::screener_world::ScreenerPre;
use crate::contract::{self, ContractInfo};
use crate::manifest::Role;
use crate::state::{CpuMeter, MemoryLimiter, PluginState};
use crate::types::{CallControl, PluginStorage, TenantServices};
use crate::types::{Event, HttpClient, ScreenRequest, Verdict};

/// Settings of the plugin runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (created if missing).
    pub cache_dir: PathBuf,
    /// Linear-memory cap per instance (default 64 MiB).
    pub memory_limit_bytes: usize,
    /// Longest stretch of wasm execution without calling a plugboard function
    /// (default 200 ms; time waiting inside host calls is never counted).
    ///
    /// A call flow does almost nothing between host calls (pick a branch,
    /// format a key): well under 1 ms. 200 ms is two orders of magnitude of
    /// headroom for slow machines and interpreted guests (Python), yet a
    /// spinning plugin is stopped before the caller notices more than a
    /// short pause.
    pub cpu_time_limit: Duration,
    /// Total wasm execution time per call (default 2 s). Stops a plugin that
    /// spins but calls a cheap host function (log, config) every 100 ms.
    pub cpu_time_per_call: Duration,
    /// Epoch tick: the granularity of the CPU checks (default 10 ms).
    pub epoch_tick: Duration,
    /// Pooling-allocator size: the most plugin instances alive at once
    /// (default 2000). Instantiations beyond it fail with an instantiate fault.
    pub max_instances: u32,
    /// Worker threads of the runtime that runs wasm (default: one per
    /// core). Plugins never run on the caller's runtime, so a plugin that
    /// burns its CPU budget competes with SIP signalling only through the OS
    /// scheduler, not by queueing ahead of it on the same worker threads.
    pub worker_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: std::env::temp_dir().join("plugboard-plugin-cache"),
            memory_limit_bytes: 64 << 20,
            cpu_time_limit: Duration::from_millis(200),
            cpu_time_per_call: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(10),
            max_instances: 2000,
            worker_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Counters since the runtime started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Instantiations attempted (one per call).
    pub instantiations: u64,
    /// Runs whose `handle-call` returned `ok`.
    pub completed: u64,
    /// Runs whose `handle-call` returned `err`.
    pub plugin_errors: u64,
    /// Faults: guest traps (panics, unreachable, ...).
    pub faults_trap: u64,
    /// Faults: CPU limit.
    pub faults_cpu: u64,
    /// Faults: memory limit.
    pub faults_memory: u64,
    /// Faults: instantiation failed.
    pub faults_instantiate: u64,
    /// Components loaded from the disk cache.
    pub cache_hits: u64,
    /// Components compiled (and then cached).
    pub cache_misses: u64,
}

#[derive(Default)]
struct Counters {
    instantiations: AtomicU64,
    completed: AtomicU64,
    plugin_errors: AtomicU64,
    faults_trap: AtomicU64,
    faults_cpu: AtomicU64,
    faults_memory: AtomicU64,
    faults_instantiate: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The tokio runtime that runs plugin instances (see
/// [`RuntimeConfig::worker_threads`]); shut down without blocking on drop,
/// which may happen inside another runtime.
struct WasmThreads(Option<tokio::runtime::Runtime>);

impl WasmThreads {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("wasm runtime alive until drop")
            .handle()
    }
}

impl Drop for WasmThreads {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Shared {
    wasm_threads: WasmThreads,
    engine: Engine,
    linker: Linker<PluginState>,
    cfg: RuntimeConfig,
    counters: Counters,
}

/// One wasmtime engine (async, epoch interruption, pooling allocator), one
/// epoch ticker thread and one linker for all plugins of the process.
///
/// Keep it alive as long as its [`Plugin`]s run: dropping it stops the epoch
/// ticker, and with it the CPU limit of runs still in progress.
pub struct Runtime {
    shared: Arc<Shared>,
    ticker: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cfg", &self.shared.cfg)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the engine, link the host interfaces and start the epoch ticker.
    pub fn new(cfg: RuntimeConfig) -> anyhow::Result<Runtime> {
        anyhow::ensure!(!cfg.epoch_tick.is_zero(), "epoch_tick must not be zero");
        anyhow::ensure!(cfg.max_instances > 0, "max_instances must not be zero");
        std::fs::create_dir_all(&cfg.cache_dir).with_context(|| {
            format!("cannot create plugin cache dir {}", cfg.cache_dir.display())
        })?;

        let n = cfg.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        // A Rust wasip2 component has a few core instances (main module,
        // adapter shims) and tables; leave room for larger guests.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(cfg.memory_limit_bytes);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wt(Engine::new(&config)).context("cannot create the wasm engine")?;

        let mut linker = Linker::new(&engine);
        wt(wasmtime_wasi::p2::add_to_linker_async(&mut linker)).context("cannot link WASI")?;
        wt(crate::host::add_to_linker(&mut linker)).context("cannot link plugboard interfaces")?;

        let (stop, stopped) = mpsc::channel::<()>();
        let ticker_engine = engine.clone();
        let tick = cfg.epoch_tick;
        let handle = std::thread::Builder::new()
            .name("plugboard-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    ticker_engine.increment_epoch();
                }
            })
            .context("cannot start the epoch ticker thread")?;

        let wasm_threads = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.worker_threads.max(1))
            .thread_name("plugboard-wasm")
            .enable_all()
            .build()
            .context("cannot start the plugin worker threads")?;
        Ok(Runtime {
            shared: Arc::new(Shared {
                wasm_threads: WasmThreads(Some(wasm_threads)),
                engine,
                linker,
                cfg,
                counters: Counters::default(),
            }),
            ticker: Some((stop, handle)),
        })
    }

    /// Counters since start.
    pub fn stats(&self) -> RuntimeStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RuntimeStats {
            instantiations: g(&c.instantiations),
            completed: g(&c.completed),
            plugin_errors: g(&c.plugin_errors),
            faults_trap: g(&c.faults_trap),
            faults_cpu: g(&c.faults_cpu),
            faults_memory: g(&c.faults_memory),
            faults_instantiate: g(&c.faults_instantiate),
            cache_hits: g(&c.cache_hits),
            cache_misses: g(&c.cache_misses),
        }
    }

    /// Load a call-flow component from a `.wasm` file.
    ///
    /// The component is compiled once and cached under `cache_dir`, keyed by
    /// the SHA-256 of its bytes and the engine's precompile-compatibility
    /// hash. It must export `plugboard:pbx/handler@0.1.x` and import only
    /// `plugboard:pbx/*@0.1.x` and WASI 0.2 (linked deny-by-default; see
    /// [`crate::contract`]). Errors name the file and the problem.
    pub fn load(&self, name: &str, path: &Path) -> anyhow::Result<Plugin> {
        let file = path.display();
        let bytes =
            std::fs::read(path).with_context(|| format!("plugin {name}: cannot read {file}"))?;
        self.load_bytes(name, &bytes, &file.to_string())
    }

    /// Like [`Runtime::load`], for component bytes; `label` names them in errors.
    pub fn load_bytes(&self, name: &str, bytes: &[u8], label: &str) -> anyhow::Result<Plugin> {
        let file = label;
        let component = self
            .compile_cached(bytes)
            .with_context(|| format!("plugin {name}: {file} is not a loadable component"))?;
        let engine = &self.shared.engine;
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
        let ContractInfo { version, role } = contract::check(
            exports.iter().map(String::as_str),
            imports.iter().map(String::as_str),
        )
        .map_err(|e| anyhow::anyhow!("plugin {name}: {file} {e}"))?;
        let plugboard_imports = contract::plugboard_imports(imports.iter().map(String::as_str))
            .into_iter()
            .map(String::from)
            .collect();
        let pre = wt(self.shared.linker.instantiate_pre(&component))
            .with_context(|| format!("plugin {name}: {file} cannot be linked"))?;
        let world = role.name();
        let mismatch = || format!("plugin {name}: {file} does not match the {world} world");
        let pre = match role {
            Role::CallFlow => Pre::CallFlow(wt(CallFlowPre::new(pre)).with_context(mismatch)?),
            Role::Screener => Pre::Screener(wt(ScreenerPre::new(pre)).with_context(mismatch)?),
            Role::Listener => Pre::Listener(wt(ListenerPre::new(pre)).with_context(mismatch)?),
        };
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                name: Arc::from(name),
                version: None,
                contract_version: version,
                role,
                plugboard_imports,
                pre,
                shared: self.shared.clone(),
            }),
        })
    }

    /// The cache file for `bytes` under this engine.
    fn cache_path(&self, bytes: &[u8]) -> PathBuf {
        let content = hex::encode(Sha256::digest(bytes));
        let mut h = DefaultHasher::new();
        self.shared
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        self.shared
            .cfg
            .cache_dir
            .join(format!("{content}-{:016x}.cwasm", h.finish()))
    }

    fn compile_cached(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        let engine = &self.shared.engine;
        let cached = self.cache_path(bytes);
        if cached.is_file() {
            // SAFETY: `deserialize_file` trusts the file to be a serialized
            // component from this wasmtime. Only this runtime writes the cache
            // dir (temp file + rename, so never half-written), the name
            // carries the engine compatibility hash, and wasmtime itself
            // checks the version and configuration header before use.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(engine, &cached) };
            match loaded {
                Ok(c) => {
                    bump(&self.shared.counters.cache_hits);
                    return Ok(c);
                }
                Err(e) => tracing::warn!(
                    cache = %cached.display(),
                    error = %e,
                    "ignoring unusable cached component; recompiling"
                ),
            }
        }
        bump(&self.shared.counters.cache_misses);
        let component = Component::new(engine, bytes)?;
        if let Err(e) = write_cache(&cached, &component) {
            tracing::warn!(cache = %cached.display(), error = %e, "cannot cache compiled component");
        }
        Ok(component)
    }
}

/// A wasmtime result as an anyhow result (wasmtime 48 has its own error type).
fn wt<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

fn write_cache(path: &Path, component: &Component) -> anyhow::Result<()> {
    let data = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

/// The pre-instantiated component, by world.
#[derive(Clone)]
enum Pre {
    CallFlow(CallFlowPre<PluginState>),
    Screener(ScreenerPre<PluginState>),
    Listener(ListenerPre<PluginState>),
}

struct PluginInner {
    name: Arc<str>,
    version: Option<String>,
    contract_version: String,
    role: Role,
    /// The plugboard interfaces the component imports, sorted.
    plugboard_imports: Vec<String>,
    pre: Pre,
    shared: Arc<Shared>,
}

/// A loaded, validated, pre-linked plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("version", &self.inner.version)
            .field("contract_version", &self.inner.contract_version)
            .finish_non_exhaustive()
    }
}

/// Everything one plugin run needs from the call.
pub struct CallRun {
    /// Call control for this call.
    pub control: Arc<dyn CallControl>,
    /// Storage scoped to (tenant, plugin).
    pub storage: Arc<dyn PluginStorage>,
    /// The plugin's configuration from the dial-plan entry.
    pub config: Vec<(String, String)>,
    /// `(tenant, call_id)` for logs.
    pub log_fields: (String, String),
    /// The tenant's tighter limits, if any (never above the runtime's).
    pub limits: RunLimits,
    /// Mail, message waiting, clock, speech and directory for (tenant,
    /// plugin); `None` = [`crate::NoServices`].
    pub services: Option<Arc<dyn TenantServices>>,
}

/// Per-run limits below the runtime's (a tenant's plugin memory and CPU).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Linear memory cap of the instance, bytes.
    pub memory_bytes: Option<usize>,
    /// CPU budget between two host calls.
    pub cpu_time: Option<Duration>,
}

/// How a plugin run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// `handle-call` returned `ok`.
    Completed,
    /// `handle-call` returned `err(message)`: apply the fallback.
    PluginError(String),
    /// The instance trapped, hit a limit, or could not be instantiated.
    Fault(Fault),
}

/// A plugin fault: the instance was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What kind of fault.
    pub kind: FaultKind,
    /// Human-readable details (the trap, the guest's panic message).
    pub message: String,
}

/// The kinds of plugin faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// A guest trap (panic, unreachable, out-of-bounds...); the trap code.
    Trap(String),
    /// Stopped for running wasm too long.
    CpuLimit,
    /// Stopped for growing memory past the cap.
    MemoryLimit,
    /// The instance could not be created (pool exhausted, start trap...).
    Instantiate(String),
}

impl FaultKind {
    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FaultKind::Trap(_) => "trap",
            FaultKind::CpuLimit => "cpu-limit",
            FaultKind::MemoryLimit => "memory-limit",
            FaultKind::Instantiate(_) => "instantiate",
        }
    }
}

/// Aborts the spawned run if the caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Plugin {
    /// The name given to [`Runtime::load`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The plugin version, when the caller set one (from its manifest).
    pub fn version(&self) -> Option<&str> {
        self.inner.version.as_deref()
    }

    /// The contract version the component targets (`0.1.0`).
    pub fn contract_version(&self) -> &str {
        &self.inner.contract_version
    }

    /// The role (world) the component implements.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The plugboard interfaces the component imports (`call`, `kv`, ...), sorted.
    pub fn plugboard_imports(&self) -> &[String] {
        &self.inner.plugboard_imports
    }

    /// The same plugin with a version label for logs and CDRs.
    pub fn with_version(&self, version: impl Into<String>) -> Plugin {
        let i = &self.inner;
        Plugin {
            inner: Arc::new(PluginInner {
                name: i.name.clone(),
                version: Some(version.into()),
                contract_version: i.contract_version.clone(),
                role: i.role,
                plugboard_imports: i.plugboard_imports.clone(),
                pre: i.pre.clone(),
                shared: i.shared.clone(),
            }),
        }
    }

    /// Run `handle-call` for one call in a fresh instance.
    ///
    /// The instance gets its own store with the memory cap, the CPU meter
    /// and deny-by-default WASI. It runs as its own task on the runtime's
    /// wasm worker threads (so even a panicking host implementation cannot
    /// take the caller down, and a busy plugin does not queue ahead of the
    /// caller's other tasks; dropping the returned future aborts it). Never panics. Faults are counted and
    /// logged with tenant, call id, plugin and fault kind.
    ///
    /// Must be called within a tokio runtime.
    pub async fn run_call(&self, run: CallRun) -> RunOutcome {
        self.spawn_run(run, None, Job::Call).await.0
    }

    /// Run a screener's `screen` for a new call. `Err` on a fault or when the
    /// plugin is not a screener; the caller applies its fail-open policy.
    pub async fn run_screen(&self, run: CallRun, request: ScreenRequest) -> Result<Verdict, Fault> {
        match self.spawn_run(run, None, Job::Screen(request)).await {
            (RunOutcome::Completed, Some(v)) => Ok(v),
            (RunOutcome::Fault(f), _) => Err(f),
            (other, _) => Err(Fault {
                kind: FaultKind::Trap("no-verdict".into()),
                message: format!("screener gave no verdict: {other:?}"),
            }),
        }
    }

    /// Run a listener's `on-event` for one event, with outbound HTTP through `http`.
    pub async fn run_event(
        &self,
        run: CallRun,
        http: Option<Arc<dyn HttpClient>>,
        event: Event,
    ) -> RunOutcome {
        self.spawn_run(run, http, Job::Event(event)).await.0
    }

    async fn spawn_run(
        &self,
        run: CallRun,
        http: Option<Arc<dyn HttpClient>>,
        job: Job,
    ) -> (RunOutcome, Option<Verdict>) {
        let (tenant, call_id) = run.log_fields.clone();
        let plugin = self.clone();
        let task = self
            .inner
            .shared
            .wasm_threads
            .handle()
            .spawn(async move { plugin.run_in_task(run, http, job).await });
        let _guard = AbortOnDrop(task.abort_handle());
        let (outcome, verdict) = match task.await {
            Ok(r) => r,
            Err(e) => (
                RunOutcome::Fault(Fault {
                    kind: FaultKind::Trap("host-panic".into()),
                    message: format!("the plugin run failed in the host: {e}"),
                }),
                None,
            ),
        };
        self.record(&outcome, &tenant, &call_id);
        (outcome, verdict)
    }

    fn record(&self, outcome: &RunOutcome, tenant: &str, call_id: &str) {
        let c = &self.inner.shared.counters;
        let plugin = &*self.inner.name;
        let version = self.inner.version.as_deref().unwrap_or("-");
        match outcome {
            RunOutcome::Completed => bump(&c.completed),
            RunOutcome::PluginError(msg) => {
                bump(&c.plugin_errors);
                tracing::info!(tenant, call_id, plugin, version, error = %msg, "plugin returned an error");
            }
            RunOutcome::Fault(f) => {
                bump(match f.kind {
                    FaultKind::Trap(_) => &c.faults_trap,
                    FaultKind::CpuLimit => &c.faults_cpu,
                    FaultKind::MemoryLimit => &c.faults_memory,
                    FaultKind::Instantiate(_) => &c.faults_instantiate,
                });
                tracing::warn!(
                    tenant,
                    call_id,
                    plugin,
                    version,
                    fault = f.kind.label(),
                    "plugin fault: {}",
                    f.message
                );
            }
        }
    }

    fn new_store(&self, run: CallRun) -> Store<PluginState> {
        let shared = &self.inner.shared;
        let cfg = &shared.cfg;
        let limits = run.limits;
        let services = run.services;
        let mut state = PluginState::new(
            run.control,
            run.storage,
            run.config,
            run.log_fields,
            self.inner.name.clone(),
            MemoryLimiter::new(
                limits
                    .memory_bytes
                    .map_or(cfg.memory_limit_bytes, |m| m.min(cfg.memory_limit_bytes)),
            ),
            CpuMeter::new(
                limits
                    .cpu_time
                    .map_or(cfg.cpu_time_limit, |c| c.min(cfg.cpu_time_limit)),
                cfg.cpu_time_per_call,
            ),
        );
        if let Some(services) = services {
            state.services = services;
        }
        let mut store = Store::new(&shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.call_hook(|mut cx, hook| {
            cx.data_mut().cpu.on_hook(hook, Instant::now());
            Ok(())
        });
        // Check once per tick while wasm runs; yield to tokio each time so a
        // busy plugin shares its worker thread (`yield_now` rather than
        // `Yield`: it also lets the timer driver run).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            if cx.data().cpu.over_limit(Instant::now()) {
                cx.data_mut().cpu_exceeded = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        store
    }

    /// New store + instantiation, without calling the plugin (benchmarks).
    #[doc(hidden)]
    pub async fn instantiate_only(&self, run: CallRun) -> anyhow::Result<()> {
        let mut store = self.new_store(run);
        match &self.inner.pre {
            Pre::CallFlow(p) => p.instantiate_async(&mut store).await.map(drop)?,
            Pre::Screener(p) => p.instantiate_async(&mut store).await.map(drop)?,
            Pre::Listener(p) => p.instantiate_async(&mut store).await.map(drop)?,
        }
        Ok(())
    }

    async fn run_in_task(
        &self,
        run: CallRun,
        http: Option<Arc<dyn HttpClient>>,
        job: Job,
    ) -> (RunOutcome, Option<Verdict>) {
        bump(&self.inner.shared.counters.instantiations);
        let mut store = self.new_store(run);
        store.data_mut().http = http;
        let instantiate = |store: &Store<PluginState>, e| {
            RunOutcome::Fault(classify(store, e, FaultKind::Instantiate))
        };
        let result = match (&self.inner.pre, job) {
            (Pre::CallFlow(pre), Job::Call) => match pre.instantiate_async(&mut store).await {
                Err(e) => return (instantiate(&store, e), None),
                Ok(flow) => flow
                    .plugboard_pbx_handler()
                    .call_handle_call(&mut store)
                    .await
                    .map(|r| (r, None)),
            },
            (Pre::Screener(pre), Job::Screen(req)) => match pre.instantiate_async(&mut store).await
            {
                Err(e) => return (instantiate(&store, e), None),
                Ok(s) => s
                    .plugboard_pbx_screening()
                    .call_screen(&mut store, &req.into())
                    .await
                    .map(|v| (Ok(()), Some(v.into()))),
            },
            (Pre::Listener(pre), Job::Event(ev)) => match pre.instantiate_async(&mut store).await {
                Err(e) => return (instantiate(&store, e), None),
                Ok(l) => l
                    .plugboard_pbx_events()
                    .call_on_event(&mut store, &ev.into())
                    .await
                    .map(|r| (r, None)),
            },
            (_, job) => {
                return (
                    RunOutcome::PluginError(format!(
                        "plugin {} is a {} plugin and cannot {}",
                        self.inner.name,
                        self.inner.role.name(),
                        job.what()
                    )),
                    None,
                );
            }
        };
        match result {
            Ok((Ok(()), verdict)) => (RunOutcome::Completed, verdict),
            Ok((Err(msg), _)) => (RunOutcome::PluginError(msg), None),
            Err(e) => (
                RunOutcome::Fault(classify(&store, e, FaultKind::Trap)),
                None,
            ),
        }
    }
}

/// What a run does.
enum Job {
    Call,
    Screen(ScreenRequest),
    Event(Event),
}

impl Job {
    fn what(&self) -> &'static str {
        match self {
            Job::Call => "handle calls",
            Job::Screen(_) => "screen calls",
            Job::Event(_) => "receive events",
        }
    }
}

/// Turn a wasmtime error into a fault, using the meters' flags first (they
/// are exact), then the trap code.
fn classify(
    store: &Store<PluginState>,
    e: wasmtime::Error,
    other: impl FnOnce(String) -> FaultKind,
) -> Fault {
    let state = store.data();
    let trap = e.downcast_ref::<Trap>().map(|t| format!("{t:?}"));
    // Root cause first (the trap or limit), then what the guest printed
    // (a Rust panic message), then the wasm backtrace context.
    let root = e.root_cause().to_string();
    let context = e.to_string();
    let mut message = root.clone();
    let stderr = state.stderr_text();
    if !stderr.is_empty() {
        message = format!("{message}; guest stderr: {stderr}");
    }
    if context != root {
        message = format!("{message}; {context}");
    }
    let kind = if state.limiter.hit {
        FaultKind::MemoryLimit
    } else if state.cpu_exceeded {
        message = format!(
            "stopped after {} ms of wasm execution; {message}",
            state.cpu.used().as_millis()
        );
        FaultKind::CpuLimit
    } else {
        other(trap.unwrap_or_else(|| "error".to_string()))
    };
    Fault { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_limits() {
        let c = RuntimeConfig::default();
        assert_eq!(c.memory_limit_bytes, 64 << 20);
        assert_eq!(c.cpu_time_limit, Duration::from_millis(200));
        assert_eq!(c.epoch_tick, Duration::from_millis(10));
        assert_eq!(c.max_instances, 2000);
    }

    #[test]
    fn zero_tick_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RuntimeConfig {
            cache_dir: dir.path().into(),
            epoch_tick: Duration::ZERO,
            ..Default::default()
        };
        assert!(Runtime::new(cfg).is_err());
    }

    #[test]
    fn a_file_that_is_not_a_component_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: dir.path().join("cache"),
            max_instances: 4,
            ..Default::default()
        })
        .unwrap();
        let bad = dir.path().join("bad.wasm");
        std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
        let err = format!("{:#}", rt.load("bad", &bad).unwrap_err());
        assert!(err.contains("bad.wasm"), "{err}");
        let missing = format!(
            "{:#}",
            rt.load("x", &dir.path().join("nope.wasm")).unwrap_err()
        );
        assert!(missing.contains("nope.wasm"), "{missing}");
    }
}
