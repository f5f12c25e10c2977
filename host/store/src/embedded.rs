//! [`EmbeddedStore`]: the default, serverless [`Store`] backend.
//!
//! # Layout
//!
//! ```text
//! <data_dir>/plugboard.redb                              metadata (redb, ACID)
//! <data_dir>/recordings/<tenant>/<plugin>/<id>.wav       audio, one file per recording
//! <data_dir>/recordings/<tenant>/<plugin>/.<id>.wav.tmp  a put in progress
//! ```
//!
//! `<tenant>` and `<plugin>` are escaped (see `validate::path_component`) and
//! `<id>` is always 32 hex digits chosen by the store, so no argument can
//! name a file outside its own `(tenant, plugin)` directory.
//!
//! # Writes: one writer thread with group commit
//!
//! redb allows one write transaction at a time and a durable commit costs an
//! fsync (milliseconds on real disks), so a transaction per REGISTER would cap
//! registrations at a few hundred per second. Instead every write is sent to a
//! single writer thread, which takes the first queued job plus everything that
//! queued up behind it (up to 1,024 jobs) and applies the whole batch in **one**
//! transaction:
//!
//! - If any job in the batch needs durability (key-value writes, recording
//!   metadata), the batch commits with [`Durability::Immediate`]: every caller
//!   in it returns only after the fsync, and concurrent callers share that fsync.
//! - A batch of only binding updates commits with [`Durability::None`]: it is
//!   visible to readers at once but not yet on disk. The writer makes it durable
//!   with an empty immediate commit after at most [`BINDINGS_FLUSH_INTERVAL`] of
//!   quiet, whenever a durable job comes along, on [`EmbeddedStore::flush`], and
//!   when the store is dropped.
//!
//! **Trade-off:** a power loss or crash can lose up to about one second of
//! registration changes (the database itself stays consistent: redb rolls back
//! to the last durable commit). Registrations are soft state: phones re-register
//! when their binding expires or when a call to them fails, so this costs at
//! most a short unreachability, never corruption. Key-value data and recordings
//! are durable when their call returns, as the [`Store`] contract demands.
//!
//! If a batch fails as a whole, each job is retried alone so that one bad job
//! cannot fail its neighbours.
//!
//! # Reads
//!
//! Reads open a redb read transaction (MVCC snapshot, never blocked by the
//! writer) inside [`tokio::task::spawn_blocking`].
//!
//! # Recordings and crash safety
//!
//! `recording_put` writes the WAV to `.<id>.wav.tmp`, fsyncs it, renames it to
//! `<id>.wav`, fsyncs the directory, and only then commits the metadata
//! durably. A recording exists **iff its metadata row exists**; the file alone
//! means nothing. `recording_delete` commits the metadata removal first and then
//! removes the file. A crash at any point therefore leaves the old or the new
//! state, and at worst a stray file, which [`EmbeddedStore::open`] cleans up:
//!
//! - temp files (`*.tmp`) are removed;
//! - `<id>.wav` files without metadata are **removed, not adopted**: their put
//!   never returned success (or their delete did), and the duration the caller
//!   supplied is not in the file;
//! - metadata whose file is missing (deleted by hand) is removed, with a warning.
//!
//! Files in those directories that do not match these patterns are left alone.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::{Binding, RecordingMeta, Scope, Store, StoreError, codec, validate};

/// Longest time a non-durable binding update waits before it is made durable.
pub const BINDINGS_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Most jobs applied in one write transaction.
const MAX_BATCH: usize = 1024;

/// `(tenant, user)` → encoded binding set.
const BINDINGS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("bindings");
/// `(tenant, plugin, key)` → value.
const KV: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("kv");
/// `(tenant, plugin, id)` → `(duration_ms, created_ms, size_bytes)`.
/// Host documents: (kind, key) -> bytes (JSON chosen by the host).
const DOCS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("docs");

const RECORDINGS: TableDefinition<(&str, &str, &str), (u32, u64, u64)> =
    TableDefinition::new("recordings");

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
}

/// One write, as data so that a failed batch can be replayed job by job.
#[derive(Debug)]
enum WriteOp {
    SetBindings {
        tenant: String,
        user: String,
        /// `None` removes the user's row.
        value: Option<Vec<u8>>,
    },
    KvSet {
        scope: Scope,
        key: String,
        value: Vec<u8>,
    },
    KvDelete {
        scope: Scope,
        key: String,
    },
    RecordingPut {
        scope: Scope,
        id: String,
        meta: (u32, u64, u64),
    },
    RecordingDelete {
        scope: Scope,
        id: String,
    },
    DocPut {
        kind: String,
        key: String,
        value: Vec<u8>,
    },
    DocDelete {
        kind: String,
        key: String,
    },
    /// Nothing to write; forces a durable commit.
    Flush,
}

impl WriteOp {
    fn durable(&self) -> bool {
        !matches!(self, WriteOp::SetBindings { .. })
    }
}

struct Job {
    op: WriteOp,
    /// `Ok(existed)` for deletes, `Ok(false)` otherwise.
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// State shared by the store handle, read tasks and the writer thread.
struct Shared {
    db: Database,
    recordings_dir: PathBuf,
}

impl Shared {
    fn scope_dir(&self, scope: &Scope) -> Result<PathBuf, StoreError> {
        Ok(self
            .recordings_dir
            .join(validate::path_component(&scope.tenant)?)
            .join(validate::path_component(&scope.plugin)?))
    }
}

/// The embedded [`Store`]: redb for metadata, files for audio. See the module docs.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("recordings_dir", &self.shared.recordings_dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `data_dir`: `data_dir/plugboard.redb` and
    /// `data_dir/recordings/`. Cleans up what an interrupted run left behind
    /// (see the module docs) and starts the writer thread.
    ///
    /// Blocking: call it at startup, or inside `spawn_blocking`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(data_dir)?;
        let recordings_dir = data_dir.join("recordings");
        if !recordings_dir.is_dir() {
            fs::create_dir_all(&recordings_dir)?;
            sync_dir(data_dir)?;
        }
        let db = Database::create(data_dir.join("plugboard.redb")).map_err(backend)?;
        {
            let txn = db.begin_write().map_err(backend)?;
            txn.open_table(BINDINGS).map_err(backend)?;
            txn.open_table(KV).map_err(backend)?;
            txn.open_table(RECORDINGS).map_err(backend)?;
            txn.open_table(DOCS).map_err(backend)?;
            txn.commit().map_err(backend)?;
        }
        let shared = Arc::new(Shared { db, recordings_dir });
        recover_recordings(&shared)?;

        let (tx, rx) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("plugboard-store-writer".into())
            .spawn(move || writer_loop(&writer_shared.db, &rx))?;
        Ok(Self {
            shared,
            jobs: Some(tx),
            writer: Some(writer),
        })
    }

    /// Makes every write accepted so far durable (including binding updates,
    /// which are otherwise flushed within [`BINDINGS_FLUSH_INTERVAL`]).
    pub async fn flush_all(&self) -> Result<(), StoreError> {
        self.write(WriteOp::Flush).await.map(|_| ())
    }

    async fn write(&self, op: WriteOp) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Backend("store is closed".into()))?;
        jobs.send(Job { op, reply })
            .map_err(|_| StoreError::Backend("store writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("store writer has stopped".into()))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
    }
}

impl Drop for EmbeddedStore {
    /// Stops the writer after it has applied every queued job and made them
    /// durable; waits for it, so the database file is closed on return and can
    /// be reopened at once.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

fn check_scope(scope: &Scope) -> Result<(), StoreError> {
    validate::name("tenant", &scope.tenant)?;
    validate::name("plugin", &scope.plugin)
}

fn meta_from(id: &str, (duration_ms, created_ms, size_bytes): (u32, u64, u64)) -> RecordingMeta {
    RecordingMeta {
        id: id.to_string(),
        duration_ms,
        created_ms,
        size_bytes,
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_all().await
    }

    async fn set_bindings(
        &self,
        tenant: &str,
        user: &str,
        bindings: &[Binding],
    ) -> Result<(), StoreError> {
        validate::name("tenant", tenant)?;
        validate::name("user", user)?;
        let value = if bindings.is_empty() {
            None
        } else {
            Some(codec::encode_bindings(bindings)?)
        };
        self.write(WriteOp::SetBindings {
            tenant: tenant.to_string(),
            user: user.to_string(),
            value,
        })
        .await
        .map(|_| ())
    }

    async fn bindings(&self, tenant: &str, user: &str) -> Result<Vec<Binding>, StoreError> {
        validate::name("tenant", tenant)?;
        validate::name("user", user)?;
        let (tenant, user) = (tenant.to_string(), user.to_string());
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(BINDINGS).map_err(backend)?;
            match table
                .get((tenant.as_str(), user.as_str()))
                .map_err(backend)?
            {
                Some(v) => codec::decode_bindings(v.value()),
                None => Ok(Vec::new()),
            }
        })
        .await
    }

    async fn all_bindings(&self) -> Result<Vec<(String, String, Vec<Binding>)>, StoreError> {
        self.read(|s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(BINDINGS).map_err(backend)?;
            let mut out = Vec::new();
            for row in table.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let (tenant, user) = k.value();
                out.push((
                    tenant.to_string(),
                    user.to_string(),
                    codec::decode_bindings(v.value())?,
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn kv_get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_scope(scope)?;
        validate::key(key)?;
        let (scope, key) = (scope.clone(), key.to_string());
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let v = table
                .get((scope.tenant.as_str(), scope.plugin.as_str(), key.as_str()))
                .map_err(backend)?;
            Ok(v.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn kv_set(&self, scope: &Scope, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_scope(scope)?;
        validate::key(key)?;
        if value.len() > validate::MAX_VALUE_BYTES {
            return Err(StoreError::QuotaExceeded);
        }
        self.write(WriteOp::KvSet {
            scope: scope.clone(),
            key: key.to_string(),
            value: value.to_vec(),
        })
        .await
        .map(|_| ())
    }

    async fn kv_delete(&self, scope: &Scope, key: &str) -> Result<bool, StoreError> {
        check_scope(scope)?;
        validate::key(key)?;
        self.write(WriteOp::KvDelete {
            scope: scope.clone(),
            key: key.to_string(),
        })
        .await
    }

    async fn kv_list(&self, scope: &Scope, prefix: &str) -> Result<Vec<String>, StoreError> {
        check_scope(scope)?;
        validate::prefix(prefix)?;
        let (scope, prefix) = (scope.clone(), prefix.to_string());
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let (t, p) = (scope.tenant.as_str(), scope.plugin.as_str());
            let mut out = Vec::new();
            for row in table.range((t, p, prefix.as_str())..).map_err(backend)? {
                let (k, _) = row.map_err(backend)?;
                let (kt, kp, key) = k.value();
                if kt != t || kp != p || !key.starts_with(prefix.as_str()) {
                    break;
                }
                out.push(key.to_string());
            }
            Ok(out)
        })
        .await
    }

    async fn tenant_recording_bytes(&self, tenant: &str) -> Result<u64, StoreError> {
        let tenant = tenant.to_string();
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDINGS).map_err(backend)?;
            let mut total = 0u64;
            for row in table.range((tenant.as_str(), "", "")..).map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                if k.value().0 != tenant {
                    break;
                }
                total += v.value().2;
            }
            Ok(total)
        })
        .await
    }

    async fn doc_get(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(DOCS).map_err(backend)?;
            let v = table.get((kind.as_str(), key.as_str())).map_err(backend)?;
            Ok(v.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn doc_put(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(WriteOp::DocPut {
            kind: kind.to_string(),
            key: key.to_string(),
            value: value.to_vec(),
        })
        .await
        .map(|_| ())
    }

    async fn doc_delete(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        self.write(WriteOp::DocDelete {
            kind: kind.to_string(),
            key: key.to_string(),
        })
        .await
    }

    async fn doc_list(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let kind = kind.to_string();
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(DOCS).map_err(backend)?;
            let mut out = Vec::new();
            for row in table.range((kind.as_str(), "")..).map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let (kk, key) = k.value();
                if kk != kind {
                    break;
                }
                out.push((key.to_string(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn recording_put(
        &self,
        scope: &Scope,
        wav: Vec<u8>,
        duration_ms: u32,
    ) -> Result<RecordingMeta, StoreError> {
        check_scope(scope)?;
        if wav.len() > validate::MAX_RECORDING_BYTES {
            return Err(StoreError::QuotaExceeded);
        }
        let id = validate::new_recording_id();
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let size_bytes = wav.len() as u64;
        let dir = self.shared.scope_dir(scope)?;
        let final_path = dir.join(format!("{id}.wav"));
        {
            let (dir, id, final_path) = (dir.clone(), id.clone(), final_path.clone());
            let recordings_dir = self.shared.recordings_dir.clone();
            tokio::task::spawn_blocking(move || {
                write_file_atomically(&recordings_dir, &dir, &id, &final_path, &wav)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))??;
        }
        let meta = (duration_ms, created_ms, size_bytes);
        let committed = self
            .write(WriteOp::RecordingPut {
                scope: scope.clone(),
                id: id.clone(),
                meta,
            })
            .await;
        if let Err(e) = committed {
            // No metadata, so the file is not a recording; remove it now rather
            // than at the next open.
            let _ = tokio::task::spawn_blocking(move || fs::remove_file(final_path)).await;
            return Err(e);
        }
        Ok(meta_from(&id, meta))
    }

    async fn recording_get(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<(RecordingMeta, PathBuf)>, StoreError> {
        check_scope(scope)?;
        validate::recording_id(id)?;
        let path = self.shared.scope_dir(scope)?.join(format!("{id}.wav"));
        let (scope, id) = (scope.clone(), id.to_string());
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDINGS).map_err(backend)?;
            let row = table
                .get((scope.tenant.as_str(), scope.plugin.as_str(), id.as_str()))
                .map_err(backend)?;
            Ok(row.map(|v| (meta_from(&id, v.value()), path)))
        })
        .await
    }

    async fn recording_list(&self, scope: &Scope) -> Result<Vec<RecordingMeta>, StoreError> {
        check_scope(scope)?;
        let scope = scope.clone();
        self.read(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(RECORDINGS).map_err(backend)?;
            let (t, p) = (scope.tenant.as_str(), scope.plugin.as_str());
            let mut out = Vec::new();
            for row in table.range((t, p, "")..).map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let (kt, kp, id) = k.value();
                if kt != t || kp != p {
                    break;
                }
                out.push(meta_from(id, v.value()));
            }
            out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
            Ok(out)
        })
        .await
    }

    async fn recording_delete(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        check_scope(scope)?;
        validate::recording_id(id)?;
        let path = self.shared.scope_dir(scope)?.join(format!("{id}.wav"));
        let existed = self
            .write(WriteOp::RecordingDelete {
                scope: scope.clone(),
                id: id.to_string(),
            })
            .await?;
        if existed {
            // The metadata is gone (durably), so the recording is deleted; a file
            // left behind by a crash here is removed at the next open.
            tokio::task::spawn_blocking(move || match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .await
            .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))??;
        }
        Ok(existed)
    }
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `final_path` so that a crash leaves either no file or the
/// complete file: temp name, fsync, rename, fsync directory.
fn write_file_atomically(
    recordings_dir: &Path,
    dir: &Path,
    id: &str,
    final_path: &Path,
    bytes: &[u8],
) -> Result<(), StoreError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
        // Make the new directories themselves durable: fsync each one and its parent.
        let mut d = dir;
        while d != recordings_dir {
            let Some(parent) = d.parent() else { break };
            sync_dir(parent)?;
            d = parent;
        }
    }
    let tmp = dir.join(format!(".{id}.wav.tmp"));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, final_path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(StoreError::Io)
}

/// Startup clean-up of recordings, see the module docs.
fn recover_recordings(shared: &Shared) -> Result<(), StoreError> {
    let mut expected = HashSet::new();
    let mut missing = Vec::new();
    {
        let txn = shared.db.begin_read().map_err(backend)?;
        let table = txn.open_table(RECORDINGS).map_err(backend)?;
        for row in table.iter().map_err(backend)? {
            let (k, _) = row.map_err(backend)?;
            let (tenant, plugin, id) = k.value();
            let scope = Scope::new(tenant, plugin);
            let path = shared.scope_dir(&scope)?.join(format!("{id}.wav"));
            if path.is_file() {
                expected.insert(path);
            } else {
                missing.push((scope, id.to_string()));
            }
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            count = missing.len(),
            "recordings whose audio file is missing: removing their metadata"
        );
        let txn = shared.db.begin_write().map_err(backend)?;
        {
            let mut table = txn.open_table(RECORDINGS).map_err(backend)?;
            for (scope, id) in &missing {
                table
                    .remove((scope.tenant.as_str(), scope.plugin.as_str(), id.as_str()))
                    .map_err(backend)?;
            }
        }
        txn.commit().map_err(backend)?;
    }

    let (mut temps, mut orphans) = (0usize, 0usize);
    for tenant_dir in fs::read_dir(&shared.recordings_dir)? {
        let tenant_dir = tenant_dir?.path();
        if !tenant_dir.is_dir() {
            continue;
        }
        for plugin_dir in fs::read_dir(&tenant_dir)? {
            let plugin_dir = plugin_dir?.path();
            if !plugin_dir.is_dir() {
                continue;
            }
            let mut changed = false;
            for file in fs::read_dir(&plugin_dir)? {
                let path = file?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if name.ends_with(".wav.tmp") {
                    fs::remove_file(&path)?;
                    temps += 1;
                    changed = true;
                } else if let Some(id) = name.strip_suffix(".wav")
                    && validate::recording_id(id).is_ok()
                    && !expected.contains(&path)
                {
                    fs::remove_file(&path)?;
                    orphans += 1;
                    changed = true;
                }
            }
            if changed {
                sync_dir(&plugin_dir)?;
            }
        }
    }
    if temps + orphans > 0 {
        tracing::info!(
            temp_files = temps,
            orphan_recordings = orphans,
            "removed files left by an interrupted run"
        );
    }
    Ok(())
}

/// The writer thread: group commit (see the module docs). Returns when every
/// sender is gone, after a final durable commit if needed.
fn writer_loop(db: &Database, jobs: &mpsc::Receiver<Job>) {
    // True while non-durable commits have not been followed by a durable one.
    let mut dirty = false;
    loop {
        let first = if dirty {
            match jobs.recv_timeout(BINDINGS_FLUSH_INTERVAL) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    dirty = persist(db).is_err();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|j| j.op.durable());
        let ops: Vec<&WriteOp> = batch.iter().map(|j| &j.op).collect();
        match apply(db, &ops, durable) {
            Ok(results) => {
                dirty = !durable;
                for (job, r) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(r));
                }
            }
            Err(e) if batch.len() == 1 => {
                tracing::error!(error = %e, "store write failed");
                if let Some(job) = batch.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "batched store write failed; retrying one by one");
                for job in batch {
                    let durable = job.op.durable();
                    let r = apply(db, &[&job.op], durable).map(|mut v| v.pop().unwrap_or(false));
                    if r.is_ok() {
                        dirty = !durable;
                    }
                    let _ = job.reply.send(r);
                }
            }
        }
    }
    if dirty && let Err(e) = persist(db) {
        tracing::error!(error = %e, "final store flush failed; recent registrations may be lost");
    }
}

/// An empty durable commit: makes earlier non-durable commits durable.
fn persist(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    txn.commit().map_err(backend)
}

/// Applies `ops` in one transaction; returns each op's result (`existed` for deletes).
fn apply(db: &Database, ops: &[&WriteOp], durable: bool) -> Result<Vec<bool>, StoreError> {
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(backend)?;
    let mut results = Vec::with_capacity(ops.len());
    {
        let mut bindings = txn.open_table(BINDINGS).map_err(backend)?;
        let mut kv = txn.open_table(KV).map_err(backend)?;
        let mut recs = txn.open_table(RECORDINGS).map_err(backend)?;
        let mut docs = txn.open_table(DOCS).map_err(backend)?;
        for op in ops {
            let r = match op {
                WriteOp::SetBindings {
                    tenant,
                    user,
                    value,
                } => {
                    let key = (tenant.as_str(), user.as_str());
                    match value {
                        Some(v) => bindings.insert(key, v.as_slice()).map(|_| false),
                        None => bindings.remove(key).map(|_| false),
                    }
                }
                WriteOp::KvSet { scope, key, value } => kv
                    .insert(
                        (scope.tenant.as_str(), scope.plugin.as_str(), key.as_str()),
                        value.as_slice(),
                    )
                    .map(|_| false),
                WriteOp::KvDelete { scope, key } => kv
                    .remove((scope.tenant.as_str(), scope.plugin.as_str(), key.as_str()))
                    .map(|old| old.is_some()),
                WriteOp::RecordingPut { scope, id, meta } => recs
                    .insert(
                        (scope.tenant.as_str(), scope.plugin.as_str(), id.as_str()),
                        *meta,
                    )
                    .map(|_| false),
                WriteOp::RecordingDelete { scope, id } => recs
                    .remove((scope.tenant.as_str(), scope.plugin.as_str(), id.as_str()))
                    .map(|old| old.is_some()),
                WriteOp::DocPut { kind, key, value } => docs
                    .insert((kind.as_str(), key.as_str()), value.as_slice())
                    .map(|_| false),
                WriteOp::DocDelete { kind, key } => docs
                    .remove((kind.as_str(), key.as_str()))
                    .map(|old| old.is_some()),
                WriteOp::Flush => Ok(false),
            };
            results.push(r.map_err(backend)?);
        }
    }
    txn.commit().map_err(backend)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_VALUE_BYTES;

    fn binding(contact: &str, cseq: u32) -> Binding {
        Binding {
            contact: contact.to_string(),
            expires_at_unix: 1_900_000_000,
            source: "udp:192.0.2.7:5062".into(),
            call_id: format!("call-{cseq}"),
            cseq,
            q: Some(1.0),
            user_agent: None,
        }
    }

    fn scope(t: &str, p: &str) -> Scope {
        Scope::new(t, p)
    }

    #[tokio::test]
    async fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = scope("demo.test", "voicemail");
        let rec_id;
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .set_bindings("demo.test", "101", &[binding("sip:101@192.0.2.7", 1)])
                .await
                .unwrap();
            store.kv_set(&s, "greeting", b"hello").await.unwrap();
            rec_id = store
                .recording_put(&s, b"RIFF1234".to_vec(), 1500)
                .await
                .unwrap()
                .id;
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store.bindings("demo.test", "101").await.unwrap(),
            vec![binding("sip:101@192.0.2.7", 1)]
        );
        assert_eq!(
            store.kv_get(&s, "greeting").await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        let (meta, path) = store.recording_get(&s, &rec_id).await.unwrap().unwrap();
        assert_eq!(meta.duration_ms, 1500);
        assert_eq!(fs::read(path).unwrap(), b"RIFF1234");
    }

    #[tokio::test]
    async fn recording_bytes_are_summed_per_tenant_over_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        let a1 = s
            .recording_put(&Scope::new("a.test", "p"), vec![0; 100], 1)
            .await
            .unwrap();
        s.recording_put(&Scope::new("a.test", "q"), vec![0; 50], 1)
            .await
            .unwrap();
        s.recording_put(&Scope::new("b.test", "p"), vec![0; 7], 1)
            .await
            .unwrap();
        assert_eq!(
            s.tenant_recording_bytes("a.test").await.unwrap(),
            a1.size_bytes + 50
        );
        assert_eq!(s.tenant_recording_bytes("b.test").await.unwrap(), 7);
        assert_eq!(s.tenant_recording_bytes("a").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn host_documents_round_trip_list_by_kind_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            assert_eq!(s.doc_get("tenant", "a.test").await.unwrap(), None);
            assert!(s.doc_list("tenant").await.unwrap().is_empty());
            s.doc_put("tenant", "b.test", b"B").await.unwrap();
            s.doc_put("tenant", "a.test", b"A").await.unwrap();
            s.doc_put("tenantx", "c.test", b"C").await.unwrap();
            s.doc_put("tenant", "a.test", b"A2").await.unwrap();
            assert!(s.doc_delete("tenantx", "c.test").await.unwrap());
            assert!(!s.doc_delete("tenantx", "c.test").await.unwrap());
        }
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            s.doc_list("tenant").await.unwrap(),
            vec![
                ("a.test".to_string(), b"A2".to_vec()),
                ("b.test".to_string(), b"B".to_vec())
            ]
        );
        assert!(s.doc_list("tenantx").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn usable_as_a_shared_trait_object() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        store.kv_set(&scope("t", "p"), "k", b"v").await.unwrap();
        assert_eq!(
            store.kv_get(&scope("t", "p"), "k").await.unwrap().unwrap(),
            b"v"
        );
    }

    #[tokio::test]
    async fn bindings_replace_the_whole_set_and_empty_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let two = [binding("sip:a", 1), binding("sip:b", 2)];
        store.set_bindings("t1", "101", &two).await.unwrap();
        // Visible at once, although not yet flushed to disk.
        assert_eq!(store.bindings("t1", "101").await.unwrap(), two);
        store.set_bindings("t1", "101", &two[1..]).await.unwrap();
        assert_eq!(store.bindings("t1", "101").await.unwrap(), &two[1..]);
        store.set_bindings("t2", "101", &two[..1]).await.unwrap();
        let all = store.all_bindings().await.unwrap();
        assert_eq!(
            all,
            vec![
                ("t1".into(), "101".into(), two[1..].to_vec()),
                ("t2".into(), "101".into(), two[..1].to_vec()),
            ]
        );
        store.set_bindings("t1", "101", &[]).await.unwrap();
        assert!(store.bindings("t1", "101").await.unwrap().is_empty());
        assert_eq!(store.all_bindings().await.unwrap().len(), 1);
        store.flush().await.unwrap();
        assert!(matches!(
            store.set_bindings("", "101", &two).await,
            Err(StoreError::InvalidKey(_))
        ));
    }

    #[tokio::test]
    async fn same_key_in_two_tenants_and_two_plugins_stays_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let scopes = [
            scope("a.test", "vm"),
            scope("b.test", "vm"),
            scope("a.test", "ivr"),
        ];
        for (i, s) in scopes.iter().enumerate() {
            store
                .kv_set(s, "k", format!("v{i}").as_bytes())
                .await
                .unwrap();
        }
        for (i, s) in scopes.iter().enumerate() {
            assert_eq!(
                store.kv_get(s, "k").await.unwrap().unwrap(),
                format!("v{i}").as_bytes()
            );
            assert_eq!(store.kv_list(s, "").await.unwrap(), vec!["k".to_string()]);
        }
        assert!(store.kv_delete(&scopes[1], "k").await.unwrap());
        assert!(!store.kv_delete(&scopes[1], "k").await.unwrap());
        assert!(store.kv_get(&scopes[1], "k").await.unwrap().is_none());
        assert!(store.kv_get(&scopes[0], "k").await.unwrap().is_some());

        let meta = store
            .recording_put(&scopes[0], vec![1, 2, 3], 10)
            .await
            .unwrap();
        for other in &scopes[1..] {
            assert!(
                store
                    .recording_get(other, &meta.id)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(!store.recording_delete(other, &meta.id).await.unwrap());
            assert!(store.recording_list(other).await.unwrap().is_empty());
        }
        assert!(
            store
                .recording_get(&scopes[0], &meta.id)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn crafted_keys_ids_and_names_are_refused_or_contained() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = scope("demo.test", "vm");
        for key in ["", "a\nb", "\u{0}", "é", &"x".repeat(257)] {
            assert!(matches!(
                store.kv_set(&s, key, b"v").await,
                Err(StoreError::InvalidKey(_))
            ));
            assert!(matches!(
                store.kv_get(&s, key).await,
                Err(StoreError::InvalidKey(_))
            ));
            assert!(matches!(
                store.kv_delete(&s, key).await,
                Err(StoreError::InvalidKey(_))
            ));
        }
        assert!(matches!(
            store.kv_list(&s, "\n").await,
            Err(StoreError::InvalidKey(_))
        ));
        for id in [
            "../other/x",
            "../../plugboard.redb",
            "",
            "/etc/passwd",
            "a.wav",
        ] {
            assert!(matches!(
                store.recording_get(&s, id).await,
                Err(StoreError::InvalidKey(_))
            ));
            assert!(matches!(
                store.recording_delete(&s, id).await,
                Err(StoreError::InvalidKey(_))
            ));
        }
        // Hostile tenant and plugin names are escaped: their files stay inside recordings/.
        let root = dir.path().join("recordings").canonicalize().unwrap();
        for (t, p) in [
            ("..", ".."),
            ("../x", "../../y"),
            (".", "a/b"),
            ("a\\b", "%2E"),
        ] {
            let hostile = scope(t, p);
            let m = store.recording_put(&hostile, vec![9], 1).await.unwrap();
            let (_, path) = store.recording_get(&hostile, &m.id).await.unwrap().unwrap();
            let real = path.canonicalize().unwrap();
            assert!(real.starts_with(&root), "{real:?}");
            assert_eq!(
                real.parent().unwrap().parent().unwrap().parent().unwrap(),
                root
            );
        }
        let bad = scope("", "vm");
        assert!(matches!(
            store.kv_get(&bad, "k").await,
            Err(StoreError::InvalidKey(_))
        ));
        assert!(matches!(
            store.recording_put(&scope("t", "p\n"), vec![], 0).await,
            Err(StoreError::InvalidKey(_))
        ));
    }

    #[tokio::test]
    async fn values_over_one_mebibyte_exceed_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = scope("t", "p");
        let max = vec![7u8; MAX_VALUE_BYTES];
        store.kv_set(&s, "big", &max).await.unwrap();
        assert_eq!(
            store.kv_get(&s, "big").await.unwrap().unwrap().len(),
            MAX_VALUE_BYTES
        );
        let over = vec![7u8; MAX_VALUE_BYTES + 1];
        assert!(matches!(
            store.kv_set(&s, "big", &over).await,
            Err(StoreError::QuotaExceeded)
        ));
    }

    #[tokio::test]
    async fn kv_list_returns_exactly_the_prefixed_keys_of_the_scope() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = scope("t", "p");
        for k in ["b", "ab", "a", "abc", "ac"] {
            store.kv_set(&s, k, b"").await.unwrap();
        }
        store.kv_set(&scope("t", "p2"), "abz", b"").await.unwrap();
        store.kv_set(&scope("t", "o"), "abz", b"").await.unwrap();
        assert_eq!(store.kv_list(&s, "ab").await.unwrap(), vec!["ab", "abc"]);
        assert_eq!(
            store.kv_list(&s, "").await.unwrap(),
            vec!["a", "ab", "abc", "ac", "b"]
        );
        assert!(store.kv_list(&s, "z").await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_kv_writes_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let s = scope("t", &format!("p{}", i % 4));
                store
                    .kv_set(&s, &format!("key{i}"), &i.to_le_bytes())
                    .await
                    .unwrap();
                store.kv_set(&s, "shared", &i.to_le_bytes()).await.unwrap();
                store
                    .set_bindings("t", &format!("u{i}"), &[binding("sip:x", i)])
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for i in 0..200u32 {
            let s = scope("t", &format!("p{}", i % 4));
            let v = store.kv_get(&s, &format!("key{i}")).await.unwrap().unwrap();
            assert_eq!(v, i.to_le_bytes());
        }
        for p in 0..4 {
            let s = scope("t", &format!("p{p}"));
            assert_eq!(store.kv_list(&s, "key").await.unwrap().len(), 50);
            let shared = store.kv_get(&s, "shared").await.unwrap().unwrap();
            let last = u32::from_le_bytes(shared.try_into().unwrap());
            assert_eq!(last % 4, p, "a write from another scope leaked in");
        }
        assert_eq!(store.all_bindings().await.unwrap().len(), 200);
    }

    #[tokio::test]
    async fn recording_round_trip_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = scope("demo.test", "vm");
        let wav: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let a = store.recording_put(&s, wav.clone(), 3125).await.unwrap();
        let b = store.recording_put(&s, vec![1], 1).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.size_bytes, 50_000);
        assert!(a.id.bytes().all(|c| c.is_ascii_hexdigit()));
        let (meta, path) = store.recording_get(&s, &a.id).await.unwrap().unwrap();
        assert_eq!(meta, a);
        assert_eq!(fs::read(&path).unwrap(), wav);
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{}.wav", a.id)
        );
        // No temp file is left beside it.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        let list = store.recording_list(&s).await.unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].created_ms <= list[1].created_ms);
        assert!(store.recording_delete(&s, &a.id).await.unwrap());
        assert!(!path.exists());
        assert!(store.recording_get(&s, &a.id).await.unwrap().is_none());
        assert!(!store.recording_delete(&s, &a.id).await.unwrap());
        assert_eq!(store.recording_list(&s).await.unwrap(), vec![b]);
    }

    #[tokio::test]
    async fn temp_and_orphan_files_are_never_recordings_and_are_cleaned_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = scope("demo.test", "vm");
        let (kept, scope_dir) = {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let kept = store.recording_put(&s, vec![1, 2], 5).await.unwrap();
            let (_, path) = store.recording_get(&s, &kept.id).await.unwrap().unwrap();
            let scope_dir = path.parent().unwrap().to_path_buf();
            // What a crash mid-put leaves: a temp file, and a renamed file whose
            // metadata never committed.
            let tmp_id = validate::new_recording_id();
            let orphan_id = validate::new_recording_id();
            fs::write(scope_dir.join(format!(".{tmp_id}.wav.tmp")), b"half").unwrap();
            fs::write(scope_dir.join(format!("{orphan_id}.wav")), b"whole").unwrap();
            fs::write(scope_dir.join("README.txt"), b"operator note").unwrap();
            assert_eq!(store.recording_list(&s).await.unwrap(), vec![kept.clone()]);
            assert!(store.recording_get(&s, &tmp_id).await.unwrap().is_none());
            assert!(store.recording_get(&s, &orphan_id).await.unwrap().is_none());
            (kept, scope_dir)
        };
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut names: Vec<_> = fs::read_dir(&scope_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut expected = vec!["README.txt".to_string(), format!("{}.wav", kept.id)];
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(store.recording_list(&s).await.unwrap(), vec![kept]);
    }

    #[tokio::test]
    async fn metadata_whose_file_vanished_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = scope("t", "p");
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let m = store.recording_put(&s, vec![1], 1).await.unwrap();
            let (_, path) = store.recording_get(&s, &m.id).await.unwrap().unwrap();
            fs::remove_file(path).unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(store.recording_list(&s).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registrations_are_cheap_enough_for_thousands_per_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let n = 5_000u32;
        let start = std::time::Instant::now();
        let mut tasks = Vec::new();
        for w in 0..50u32 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in (w..n).step_by(50) {
                    let user = format!("{}", 1000 + i % 500);
                    store
                        .set_bindings("t", &user, &[binding("sip:u@192.0.2.1", i)])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        eprintln!(
            "{n} set_bindings in {elapsed:?} ({:.0}/s)",
            f64::from(n) / elapsed.as_secs_f64()
        );
        assert_eq!(store.all_bindings().await.unwrap().len(), 500);
        // Generous bound so a loaded CI box passes; the real rate is printed above.
        assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    }
}
