//! Per-call instantiation cost: a new store (limits, meters, deny-by-default
//! WASI) plus `instantiate_pre` of `test-plugin-echo-info`, without calling
//! it. Target: p50 <= 50 µs. Needs `scripts/build-plugins.sh` first.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use plugboard_plugins::*;

struct NoCall;

#[async_trait::async_trait]
impl CallControl for NoCall {
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
        Ok(())
    }
    fn info(&self) -> CallInfo {
        let p = Party {
            user: "a".into(),
            display_name: None,
            uri: "sip:a@x".into(),
        };
        CallInfo {
            call_id: "c".into(),
            caller: p.clone(),
            callee: p,
            tenant: "x".into(),
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

fn bench(c: &mut Criterion) {
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release/test_plugin_echo_info.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run scripts/build-plugins.sh",
        wasm.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: dir.path().into(),
        max_instances: 64,
        ..Default::default()
    })
    .expect("runtime");
    let plugin = rt.load("echo-info", &wasm).expect("load");
    let control: Arc<dyn CallControl> = Arc::new(NoCall);
    let storage: Arc<dyn PluginStorage> = Arc::new(NoStorage);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");

    c.bench_function("instantiate echo-info (new store + instantiate_pre)", |b| {
        b.iter(|| {
            tokio
                .block_on(plugin.instantiate_only(CallRun {
                    control: control.clone(),
                    storage: storage.clone(),
                    config: vec![("greeting".into(), "hello".into())],
                    log_fields: ("acme".into(), "call".into()),
                    limits: Default::default(),
                    services: None,
                }))
                .expect("instantiate")
        })
    });

    // Criterion reports mean and median; print an explicit p50 as well.
    let mut samples: Vec<std::time::Duration> = (0..2000)
        .map(|_| {
            let t0 = std::time::Instant::now();
            tokio
                .block_on(plugin.instantiate_only(CallRun {
                    control: control.clone(),
                    storage: storage.clone(),
                    config: vec![],
                    log_fields: ("acme".into(), "call".into()),
                    limits: Default::default(),
                    services: None,
                }))
                .expect("instantiate");
            t0.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "instantiate echo-info: p50 {:?}, p90 {:?}, p99 {:?} (target p50 <= 50 µs)",
        samples[samples.len() / 2],
        samples[samples.len() * 9 / 10],
        samples[samples.len() * 99 / 100]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
