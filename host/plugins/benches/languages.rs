//! The same plugin built in several languages, side by side: component size,
//! compile time, per-call instantiation time and memory per live instance.
//!
//! Components come from the environment, `name=path` pairs separated by commas
//! (bench/languages.sh sets it after scripts/build-examples.sh):
//!
//! ```text
//! PLUGBOARD_BENCH_COMPONENTS=rust=target/plugins/callerid-router-rust/plugin.wasm,python=...
//! ```
//!
//! Each component must be the caller-ID router (examples/callerid-router):
//! the memory figure parks live instances inside its `transfer` call.
//!
//! Per component it measures:
//! - **size**: bytes of the `.wasm` file.
//! - **compile**: `Component::new` on an engine with the runtime's code
//!   generation settings (component model, epoch interruption), no cache.
//! - **first load** / **cached load**: `Runtime::load` with an empty cache
//!   dir (compile + serialize + cache write + contract checks + linking), then
//!   again from that cache (mmap of the compiled file + checks + linking).
//! - **instantiate**: `Plugin::instantiate_only` (new store with limits and
//!   deny-by-default WASI + `instantiate_pre`), through criterion and as
//!   explicit p50/p90/p99 of 2000 samples (fewer for slow guests).
//! - **linear memory**: bytes of linear memory (all memories of the
//!   component) right after instantiation, as the store's resource limiter
//!   sees them (initial sizes + grows during instantiation); an own store
//!   and linker on a plain engine (WASI linked as in the runtime, plugboard
//!   functions stubbed as traps).
//! - **memory per live instance**: N instances (env `PLUGBOARD_BENCH_LIVE`,
//!   default 50) run `handle-call` through the runtime at once and are held
//!   inside `transfer`; the growth of the process's RSS and Private_Dirty
//!   (/proc/self/smaps_rollup) divided by N. RSS counts the copy-on-write
//!   pages of the initial memory image that an instance only reads once per
//!   mapping; Private_Dirty counts only the pages an instance wrote (its
//!   own copies), so it is the better "cost of one more call".

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use plugboard_plugins::*;

/// Parks `transfer` until released; counts the instances waiting there.
struct ParkedCall {
    waiting: Arc<AtomicUsize>,
    release: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl CallControl for ParkedCall {
    async fn answer(&self) -> Result<(), CallError> {
        Ok(())
    }
    async fn hangup(&self) {}
    async fn play(&self, _: Vec<Prompt>, _: bool) -> Result<PlayOutcome, CallError> {
        Ok(PlayOutcome::Completed)
    }
    async fn collect_digits(&self, _: CollectOptions) -> Result<Collected, CallError> {
        Err(CallError::HungUp)
    }
    async fn record(&self, _: RecordOptions) -> Result<Option<RecordingInfo>, CallError> {
        Ok(None)
    }
    async fn dial(&self, _: String, _: u32) -> Result<DialOutcome, CallError> {
        Ok(DialOutcome::Failed)
    }
    async fn transfer(&self, _: String) -> Result<(), CallError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.release.clone();
        let _ = rx.wait_for(|go| *go).await;
        Ok(())
    }
    fn info(&self) -> CallInfo {
        let p = |user: &str| Party {
            user: user.into(),
            display_name: None,
            uri: format!("sip:{user}@bench.test"),
        };
        CallInfo {
            call_id: "bench".into(),
            caller: p("101"),
            callee: p("500"),
            tenant: "bench.test".into(),
            redirect_reason: None,
            headers: vec![],
        }
    }
}

struct NoStorage;

#[async_trait::async_trait]
impl PluginStorage for NoStorage {
    async fn kv_get(&self, _: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(None)
    }
    async fn kv_set(&self, _: &str, _: Vec<u8>) -> Result<(), StorageError> {
        Ok(())
    }
    async fn kv_delete(&self, _: &str) -> Result<bool, StorageError> {
        Ok(false)
    }
    async fn kv_list(&self, _: &str) -> Result<Vec<String>, StorageError> {
        Ok(vec![])
    }
    async fn recording_get(&self, _: &str) -> Result<Option<RecordingMeta>, StorageError> {
        Ok(None)
    }
    async fn recording_list(&self) -> Result<Vec<RecordingMeta>, StorageError> {
        Ok(vec![])
    }
    async fn recording_delete(&self, _: &str) -> Result<bool, StorageError> {
        Ok(false)
    }
}

fn components() -> Vec<(String, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = std::env::var("PLUGBOARD_BENCH_COMPONENTS").unwrap_or_else(|_| {
        ["rust", "python", "javascript"]
            .map(|l| format!("{l}=target/plugins/callerid-router-{l}/plugin.wasm"))
            .join(",")
    });
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            let (name, path) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("`{pair}`: expected name=path"));
            let path = Path::new(path.trim());
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                root.join(path)
            };
            assert!(
                path.is_file(),
                "{} is missing: run scripts/build-examples.sh",
                path.display()
            );
            (name.trim().to_string(), path)
        })
        .collect()
}

fn run_for(control: Arc<dyn CallControl>) -> CallRun {
    CallRun {
        control,
        storage: Arc::new(NoStorage),
        config: vec![
            ("known".into(), "101".into()),
            ("known_target".into(), "102".into()),
            ("other_target".into(), "103".into()),
        ],
        log_fields: ("bench.test".into(), "bench".into()),
        limits: Default::default(),
        services: None,
    }
}

/// Sums the bytes of linear memory the store creates or grows.
#[derive(Default)]
struct MemoryRecorder {
    bytes: usize,
}

impl wasmtime::ResourceLimiter for MemoryRecorder {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.bytes += desired.saturating_sub(current);
        Ok(true)
    }
    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

struct OwnState {
    wasi: wasmtime_wasi::WasiCtx,
    table: wasmtime_wasi::ResourceTable,
    memory: MemoryRecorder,
}

impl wasmtime_wasi::WasiView for OwnState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `Component::new` time, and the linear memory after instantiation (or why
/// it could not be measured).
fn compile_and_measure_memory(
    tokio: &tokio::runtime::Runtime,
    bytes: &[u8],
) -> (Duration, Result<usize, String>) {
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Linker};
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    let engine = wasmtime::Engine::new(&config).expect("engine");
    let t0 = Instant::now();
    let component = Component::new(&engine, bytes).expect("compile");
    let compile = t0.elapsed();

    let mut linker = Linker::<OwnState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link WASI");
    // Plugboard functions as traps (instantiation calls none of them). Not
    // `define_unknown_imports_as_traps`: it also re-stubs the resource types
    // that WASI instances re-export (`pollable`), which breaks their types.
    for (name, item) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("plugboard:") {
            continue;
        }
        let mut stub = linker.instance(name).expect("stub instance");
        for (func, item) in instance.exports(&engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                stub.func_new(func, |_, _, _, _| {
                    wasmtime::bail!("plugboard import called during instantiation")
                })
                .expect("stub function");
            }
        }
    }
    let mut store = wasmtime::Store::new(
        &engine,
        OwnState {
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            table: wasmtime_wasi::ResourceTable::new(),
            memory: MemoryRecorder::default(),
        },
    );
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(u64::MAX / 2);
    let linear = tokio
        .block_on(linker.instantiate_async(&mut store, &component))
        .map(|_| store.data().memory.bytes)
        .map_err(|e| format!("{e:#}"));
    (compile, linear)
}

/// (Rss, Private_Dirty) of this process, bytes.
fn memory_now() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("Rss:"), field("Private_Dirty:"))
}

/// Memory growth per instance while `n` instances are parked in `transfer`.
fn memory_per_live_instance(
    tokio: &tokio::runtime::Runtime,
    plugin: &Plugin,
    n: usize,
) -> (i64, i64) {
    let run_parked = |count: usize| {
        let waiting = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let handles: Vec<_> = (0..count)
            .map(|_| {
                let plugin = plugin.clone();
                let control: Arc<dyn CallControl> = Arc::new(ParkedCall {
                    waiting: waiting.clone(),
                    release: rx.clone(),
                });
                tokio.spawn(async move { plugin.run_call(run_for(control)).await })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while waiting.load(Ordering::SeqCst) < count {
            if let Some(i) = handles.iter().position(|h| h.is_finished()) {
                tx.send_replace(true);
                let ended = handles.into_iter().nth(i).expect("handle");
                panic!(
                    "{} of {count} instances reached transfer; instance {i} ended first: {:?}",
                    waiting.load(Ordering::SeqCst),
                    tokio.block_on(ended)
                );
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} instances reached transfer",
                waiting.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let live = memory_now();
        tx.send_replace(true);
        for h in handles {
            let outcome = tokio.block_on(h).expect("join");
            assert_eq!(outcome, RunOutcome::Completed);
        }
        live
    };
    // Warm up: code pages, host allocations, pool slots.
    run_parked(n.min(4));
    let before = memory_now();
    let live = run_parked(n);
    let per = |a: u64, b: u64| (b as i64 - a as i64) / n as i64;
    (per(before.0, live.0), per(before.1, live.1))
}

fn p(samples: &[Duration], q: f64) -> Duration {
    samples[((samples.len() - 1) as f64 * q) as usize]
}

fn bench(c: &mut Criterion) {
    let live_n: usize = std::env::var("PLUGBOARD_BENCH_LIVE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let mut table = Vec::new();
    for (name, path) in components() {
        let bytes = std::fs::read(&path).expect("read component");
        let (compile, linear) = compile_and_measure_memory(&tokio, &bytes);
        let linear = linear.unwrap_or_else(|e| {
            eprintln!("{name}: linear memory not measured: {e}");
            0
        });

        let cache = tempfile::tempdir().expect("temp dir");
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: cache.path().into(),
            // The default pool (2000 instances). Its core-instance budget is
            // 4 per instance; a Python router instantiates 14 core modules,
            // so about 570 Python calls fit at once (JS 4, Rust 3).
            ..Default::default()
        })
        .expect("runtime");
        let t0 = Instant::now();
        let plugin = rt.load(&name, &path).expect("first load");
        let first_load = t0.elapsed();
        let t0 = Instant::now();
        let plugin_cached = rt.load(&name, &path).expect("cached load");
        let cached_load = t0.elapsed();
        assert_eq!(rt.stats().cache_hits, 1, "second load must hit the cache");
        drop(plugin_cached);

        // Also proves the component runs: every instance must reach transfer.
        let (mem_rss, mem_dirty) = memory_per_live_instance(&tokio, &plugin, live_n);

        let control: Arc<dyn CallControl> = Arc::new(ParkedCall {
            waiting: Arc::new(AtomicUsize::new(0)),
            release: tokio::sync::watch::channel(true).1,
        });
        // A failed instantiation is counted, not fatal: on a loaded machine
        // the runtime's CPU meter can stop one (it counts wall time while
        // the thread is in wasm, descheduled or not).
        let mut failed = 0usize;
        let mut last_error = None;
        let mut instantiate = || {
            if let Err(e) = tokio.block_on(plugin.instantiate_only(run_for(control.clone()))) {
                failed += 1;
                last_error = Some(format!("{e:#}"));
            }
        };
        c.bench_function(&format!("instantiate {name}"), |b| b.iter(&mut instantiate));
        let mut samples = Vec::new();
        let t_end = Instant::now() + Duration::from_secs(10);
        while samples.len() < 2000 && (samples.len() < 100 || Instant::now() < t_end) {
            let t0 = Instant::now();
            instantiate();
            samples.push(t0.elapsed());
        }
        if let Some(e) = last_error {
            eprintln!("{name}: {failed} instantiations failed; the last: {e}");
        }
        samples.sort();
        table.push(format!(
            "{name:<11} {:>11} {:>9.1?} {:>10.1?} {:>9.2?} {:>9.1?} {:>9.1?} {:>9.1?} {:>7} {:>10} {:>10} {:>11} {:>6}",
            bytes.len(),
            compile,
            first_load,
            cached_load,
            p(&samples, 0.5),
            p(&samples, 0.9),
            p(&samples, 0.99),
            samples.len(),
            linear,
            mem_rss,
            mem_dirty,
            failed,
        ));
    }
    println!(
        "\n{:<11} {:>11} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10} {:>11} {:>6}",
        "component",
        "size B",
        "compile",
        "1st load",
        "cached",
        "inst p50",
        "inst p90",
        "inst p99",
        "samples",
        "linmem B",
        "RSS B/inst",
        "dirty B/inst",
        "failed"
    );
    for row in table {
        println!("{row}");
    }
    println!("(memory per instance: {live_n} live instances parked in transfer)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
