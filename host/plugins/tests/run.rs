//! Runs the test guests of `tests/plugins/` through the real runtime with a
//! fake call and in-memory storage. Build the guests first:
//! `scripts/build-plugins.sh`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugboard_plugins::*;

fn wasm(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-plugins.sh to build the test guests",
        p.display()
    );
    p
}

/// What the fake call saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Answer,
    Play(Vec<Prompt>),
    Hangup,
}

#[derive(Default)]
struct FakeCall {
    events: Mutex<Vec<Event>>,
    play_delay: Duration,
}

#[async_trait::async_trait]
impl CallControl for FakeCall {
    async fn answer(&self) -> Result<(), CallError> {
        self.events.lock().unwrap().push(Event::Answer);
        Ok(())
    }
    async fn hangup(&self) {
        self.events.lock().unwrap().push(Event::Hangup);
    }
    async fn play(&self, prompts: Vec<Prompt>, _barge_in: bool) -> Result<PlayOutcome, CallError> {
        tokio::time::sleep(self.play_delay).await;
        self.events.lock().unwrap().push(Event::Play(prompts));
        Ok(PlayOutcome::Completed)
    }
    async fn collect_digits(&self, _opts: CollectOptions) -> Result<Collected, CallError> {
        Err(CallError::HungUp)
    }
    async fn record(&self, _opts: RecordOptions) -> Result<Option<RecordingInfo>, CallError> {
        Err(CallError::HungUp)
    }
    async fn dial(&self, _target: String, _timeout_ms: u32) -> Result<DialOutcome, CallError> {
        Ok(DialOutcome::Failed)
    }
    async fn transfer(&self, _target: String) -> Result<(), CallError> {
        Err(CallError::Denied("no transfers in tests".into()))
    }
    fn info(&self) -> CallInfo {
        let party = |user: &str| Party {
            user: user.into(),
            display_name: None,
            uri: format!("sip:{user}@acme.test"),
        };
        CallInfo {
            call_id: "call-1".into(),
            caller: party("alice"),
            callee: party("100"),
            tenant: "acme.test".into(),
            redirect_reason: None,
            headers: vec![],
        }
    }
}

#[derive(Default)]
struct MemStorage {
    kv: Mutex<BTreeMap<String, Vec<u8>>>,
}

#[async_trait::async_trait]
impl PluginStorage for MemStorage {
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.kv.lock().unwrap().get(key).cloned())
    }
    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.kv.lock().unwrap().insert(key.into(), value);
        Ok(())
    }
    async fn kv_delete(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.kv.lock().unwrap().remove(key).is_some())
    }
    async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .kv
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    async fn recording_get(&self, _id: &str) -> Result<Option<RecordingMeta>, StorageError> {
        Ok(None)
    }
    async fn recording_list(&self) -> Result<Vec<RecordingMeta>, StorageError> {
        Ok(vec![])
    }
    async fn recording_delete(&self, _id: &str) -> Result<bool, StorageError> {
        Ok(false)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    rt: Runtime,
}

fn runtime(tweak: impl FnOnce(&mut RuntimeConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RuntimeConfig {
        cache_dir: dir.path().join("cache"),
        memory_limit_bytes: 16 << 20,
        max_instances: 16,
        ..Default::default()
    };
    tweak(&mut cfg);
    Env {
        rt: Runtime::new(cfg).unwrap(),
        _dir: dir,
    }
}

fn run_for(call: &Arc<FakeCall>, storage: &Arc<MemStorage>) -> CallRun {
    CallRun {
        control: call.clone(),
        storage: storage.clone(),
        config: vec![("greeting".into(), "hello-there".into())],
        log_fields: ("acme.test".into(), "call-1".into()),
        limits: Default::default(),
        services: None,
    }
}

async fn run(env: &Env, guest: &str) -> (RunOutcome, Arc<FakeCall>, Arc<MemStorage>, Duration) {
    let plugin = env.rt.load(guest, &wasm(guest)).unwrap();
    let call = Arc::new(FakeCall::default());
    let storage = Arc::new(MemStorage::default());
    let t0 = Instant::now();
    let outcome = plugin.run_call(run_for(&call, &storage)).await;
    (outcome, call, storage, t0.elapsed())
}

fn fault_kind(o: &RunOutcome) -> &FaultKind {
    match o {
        RunOutcome::Fault(f) => &f.kind,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_info_answers_plays_stores_the_caller_and_hangs_up() {
    let env = runtime(|_| {});
    let (outcome, call, storage, _) = run(&env, "test_plugin_echo_info").await;
    assert_eq!(outcome, RunOutcome::Completed);
    assert_eq!(
        *call.events.lock().unwrap(),
        vec![
            Event::Answer,
            Event::Play(vec![Prompt::Stock("beep".into())]),
            Event::Play(vec![Prompt::Stock("hello-there".into())]),
            Event::Hangup,
        ]
    );
    assert_eq!(
        storage
            .kv
            .lock()
            .unwrap()
            .get("last-caller")
            .map(Vec::as_slice),
        Some(&b"alice"[..])
    );
    let s = env.rt.stats();
    assert_eq!((s.instantiations, s.completed), (1, 1));
}

#[tokio::test]
async fn a_spinning_plugin_is_stopped_for_cpu_within_two_seconds() {
    let env = runtime(|_| {});
    let (outcome, call, _, took) = run(&env, "test_plugin_spin").await;
    eprintln!("spin: {outcome:?} after {took:?}");
    assert_eq!(fault_kind(&outcome), &FaultKind::CpuLimit, "{outcome:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(*call.events.lock().unwrap(), vec![Event::Answer]);
    assert_eq!(env.rt.stats().faults_cpu, 1);
}

#[tokio::test]
async fn a_plugin_allocating_past_the_cap_is_a_memory_fault() {
    let env = runtime(|_| {});
    let (outcome, _, _, _) = run(&env, "test_plugin_hog").await;
    eprintln!("hog: {outcome:?}");
    assert_eq!(fault_kind(&outcome), &FaultKind::MemoryLimit, "{outcome:?}");
    assert_eq!(env.rt.stats().faults_memory, 1);
}

#[tokio::test]
async fn a_panicking_plugin_is_a_trap_with_its_message() {
    let env = runtime(|_| {});
    let (outcome, _, _, _) = run(&env, "test_plugin_trap").await;
    eprintln!("trap: {outcome:?}");
    let RunOutcome::Fault(f) = &outcome else {
        panic!("expected a fault, got {outcome:?}")
    };
    assert!(matches!(f.kind, FaultKind::Trap(_)), "{f:?}");
    assert!(f.message.contains("panics on purpose"), "{}", f.message);
    assert_eq!(env.rt.stats().faults_trap, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_plugin_does_not_disturb_another_call_on_the_same_thread() {
    let env = runtime(|_| {});
    let spin = env.rt.load("spin", &wasm("test_plugin_spin")).unwrap();
    let echo = env.rt.load("echo", &wasm("test_plugin_echo_info")).unwrap();
    let (c1, s1) = (
        Arc::new(FakeCall::default()),
        Arc::new(MemStorage::default()),
    );
    let (c2, s2) = (
        Arc::new(FakeCall {
            play_delay: Duration::from_millis(20),
            ..Default::default()
        }),
        Arc::new(MemStorage::default()),
    );
    let t0 = Instant::now();
    let (a, b) = tokio::join!(spin.run_call(run_for(&c1, &s1)), async {
        let o = echo.run_call(run_for(&c2, &s2)).await;
        (o, t0.elapsed())
    });
    assert_eq!(fault_kind(&a), &FaultKind::CpuLimit);
    assert_eq!(b.0, RunOutcome::Completed);
    // echo-info waits 2 x 20 ms in play; it must not wait for the spinner.
    assert!(b.1 < Duration::from_millis(180), "echo-info took {:?}", b.1);
}

#[tokio::test]
async fn time_waiting_in_host_calls_does_not_count_as_cpu() {
    let env = runtime(|c| c.cpu_time_limit = Duration::from_millis(50));
    let plugin = env.rt.load("echo", &wasm("test_plugin_echo_info")).unwrap();
    let call = Arc::new(FakeCall {
        play_delay: Duration::from_millis(200),
        ..Default::default()
    });
    let storage = Arc::new(MemStorage::default());
    let outcome = plugin.run_call(run_for(&call, &storage)).await;
    assert_eq!(outcome, RunOutcome::Completed);
}

#[tokio::test]
async fn the_second_load_comes_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig {
        cache_dir: dir.path().into(),
        max_instances: 4,
        ..Default::default()
    };
    let path = wasm("test_plugin_echo_info");
    {
        let rt = Runtime::new(cfg.clone()).unwrap();
        rt.load("echo", &path).unwrap();
        rt.load("echo", &path).unwrap();
        let s = rt.stats();
        assert_eq!((s.cache_misses, s.cache_hits), (1, 1));
    }
    // A new process (runtime) reuses the compiled file.
    let rt = Runtime::new(cfg).unwrap();
    let plugin = rt.load("echo", &path).unwrap();
    assert_eq!((rt.stats().cache_misses, rt.stats().cache_hits), (0, 1));
    assert_eq!(plugin.contract_version(), "0.1.2");
    assert_eq!(plugin.with_version("1.2.3").version(), Some("1.2.3"));
    let call = Arc::new(FakeCall::default());
    let storage = Arc::new(MemStorage::default());
    assert_eq!(
        plugin.run_call(run_for(&call, &storage)).await,
        RunOutcome::Completed
    );
}

#[tokio::test]
async fn a_corrupt_cache_file_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig {
        cache_dir: dir.path().into(),
        max_instances: 4,
        ..Default::default()
    };
    let path = wasm("test_plugin_trap");
    Runtime::new(cfg.clone())
        .unwrap()
        .load("trap", &path)
        .unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    let rt = Runtime::new(cfg).unwrap();
    rt.load("trap", &path).unwrap();
    assert_eq!(rt.stats().cache_misses, 1);
}

/// A component built against contract 0.1.1 (tests/plugins/echo-info at
/// commit 39e4cf8, before 0.1.2 added mail, mwi, clock, speech, directory
/// and redirect) still loads and runs on this host: 0.1.x only adds.
#[tokio::test]
async fn a_component_built_for_contract_0_1_1_still_runs() {
    let env = runtime(|_| {});
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/echo-info-contract-0.1.1.wasm");
    let plugin = env.rt.load("echo", &path).unwrap();
    assert_eq!(plugin.contract_version(), "0.1.1");
    let call = Arc::new(FakeCall::default());
    let storage = Arc::new(MemStorage::default());
    assert_eq!(
        plugin.run_call(run_for(&call, &storage)).await,
        RunOutcome::Completed
    );
    assert_eq!(
        *call.events.lock().unwrap(),
        vec![
            Event::Answer,
            Event::Play(vec![Prompt::Stock("beep".into())]),
            Event::Play(vec![Prompt::Stock("hello-there".into())]),
            Event::Hangup,
        ]
    );
}
