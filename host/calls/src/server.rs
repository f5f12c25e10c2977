//! The call layer's shared state and the transaction-user dispatch: what to
//! do with each new request the transaction layer reports.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use plugboard_media::{MediaConfig, MediaEngine};
use plugboard_plugins::{Catalog, Runtime, RuntimeConfig};
use plugboard_sip::auth::NonceManager;
use plugboard_sip::transaction::{Peer, TxKey};
use plugboard_sip::{Method, Request};
use plugboard_store::{EmbeddedStore, Store};
use plugboard_tenants::{Config, Tenant};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::cdr::CdrWriter;
use crate::digest::{AuthResult, authenticate};
use crate::prompts::Prompts;
use crate::registrar::{ExpiryPolicy, Registrar};
use crate::reply::{ALLOW, no_such_dialog, reject, reply};
use crate::transport::{self, Dispatcher, SipHandle};

/// A message for a running call, from the dispatcher.
#[derive(Debug)]
pub enum LegMsg {
    /// An in-dialog request (BYE, re-INVITE, INFO, UPDATE, ...).
    Request {
        key: TxKey,
        req: Request,
        peer: Peer,
    },
    /// An ACK for one of our 2xx responses.
    Ack(Request),
    /// The caller cancelled the INVITE.
    Cancel,
}

/// Which side of a call a dialog belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The inbound leg (the caller).
    A,
    /// An outbound leg (a callee).
    B,
}

pub(crate) type LegSender = mpsc::UnboundedSender<(Side, LegMsg)>;

/// Counters for metrics and tests.
#[derive(Default)]
pub struct Stats {
    pub calls_started: AtomicU64,
    pub calls_answered: AtomicU64,
    pub registrations: AtomicU64,
    pub plugin_faults: AtomicU64,
    /// Per tenant: (calls, plugin runs, plugin faults, registrations accepted).
    pub per_tenant: Mutex<HashMap<String, TenantStats>>,
}

/// Counters of one tenant.
#[derive(Default, Clone, Copy, Debug)]
pub struct TenantStats {
    pub calls: u64,
    pub plugin_runs: u64,
    pub plugin_faults: u64,
    pub registrations: u64,
}

impl Stats {
    /// Adds to a tenant's counters.
    pub fn tenant(&self, domain: &str, f: impl FnOnce(&mut TenantStats)) {
        let mut m = self.per_tenant.lock().expect("stats lock");
        f(m.entry(domain.to_string()).or_default());
    }
}

/// A call in progress, for the admin API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LiveCall {
    pub call_id: String,
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub start_ms: u64,
    pub plugin: Option<String>,
    pub plugin_version: Option<String>,
    /// The user who answered (bridged calls).
    pub answered_by: Option<String>,
}

/// Everything a call needs, shared.
pub struct Core {
    pub config: Arc<Config>,
    pub sip: OnceLock<SipHandle>,
    pub store: Arc<dyn Store>,
    pub media: MediaEngine,
    /// Installed plugins (and the runtime they run on).
    pub catalog: Catalog,
    /// Tenants as they are now (file + run-time changes).
    pub tenants: crate::tenants::TenantTable,
    /// Plugins disabled per tenant after repeated faults.
    pub faults: crate::faults::FaultTracker,
    /// Calls in progress by Call-ID.
    pub live: Mutex<HashMap<String, LiveCall>>,
    /// Events for listener plugins.
    pub events: crate::events::EventBus,
    /// Outbound HTTP connections of plugins (the `http` capability).
    pub http: crate::http_out::HttpPool,
    /// The operator's trust store of vendor keys (`[trust] dir`).
    pub trust: crate::licensing::SharedTrust,
    /// Licences: capacities, entitlements, reminders.
    pub licences: Arc<crate::licensing::Licences>,
    /// Calls admitted per tenant (for `limits.max_calls`).
    pub(crate) admitted: Mutex<HashMap<String, u32>>,
    pub registrar: Registrar,
    pub nonces: NonceManager,
    /// Digest algorithms offered, most preferred first.
    pub digest_algorithms: Vec<plugboard_sip::auth::Algorithm>,
    pub prompts: Prompts,
    pub cdr: CdrWriter,
    pub stats: Stats,
    /// In-dialog routing: (Call-ID, our tag) → the call that owns the dialog.
    pub(crate) dialogs: Mutex<HashMap<(String, String), (Side, LegSender)>>,
    /// Pending inbound INVITEs, for CANCEL.
    pub(crate) invites: Mutex<HashMap<TxKey, LegSender>>,
    /// Message-waiting counts and subscriptions (RFC 3842).
    pub mwi: crate::mwi::Mwi,
    /// The durable outgoing mail queue (set once the core exists).
    pub mail: OnceLock<Arc<plugboard_mail::MailQueue>>,
    /// The queue's worker, awaited at shutdown.
    mail_worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Directories per tenant and the text-to-speech engine.
    pub services: crate::services::Shared,
}

/// A running plugboard host.
pub struct Server {
    pub core: Arc<Core>,
}

impl Server {
    /// Opens storage, compiles the plugins, binds the sockets and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let config = Arc::new(config);
        let s = &config.server;
        std::fs::create_dir_all(&s.data_dir)
            .with_context(|| format!("cannot create data_dir {}", s.data_dir.display()))?;
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&s.data_dir)
                .with_context(|| format!("cannot open storage in {}", s.data_dir.display()))?,
        );
        let advertise = s.advertise_ip.unwrap_or_else(|| default_advertise(&config));
        let media = MediaEngine::new(MediaConfig {
            bind_ip: s.media_ip,
            advertise_ip: advertise,
            port_min: s.rtp_ports.0,
            port_max: s.rtp_ports.1,
        })
        .context("cannot start the media engine")?;

        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: s.plugin_cache_dir.clone(),
            memory_limit_bytes: s.plugin_memory_mb as usize * 1024 * 1024,
            cpu_time_limit: Duration::from_millis(s.plugin_cpu_ms as u64),
            ..RuntimeConfig::default()
        })
        .context("cannot start the plugin runtime")?;
        let catalog = Catalog::open(runtime, &s.data_dir.join("plugins"))
            .context("cannot open the plugin catalog")?;
        let trust = plugboard_registry::trust::TrustStore::open(&config.trust.dir)
            .with_context(|| format!("{}: [trust]", config.source.display()))?;
        if config.trust.allow_unsigned {
            warn!(
                "development mode ([trust] allow_unsigned = true): unsigned plugin packages are accepted"
            );
        }
        for p in &config.plugins {
            let context = || {
                format!(
                    "{}:{}: plugin \"{}\" ({})",
                    config.source.display(),
                    p.line,
                    p.name,
                    p.path.display()
                )
            };
            let pkg = crate::licensing::configured_package(&p.path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", context()))?;
            let provenance = crate::licensing::admit_package(
                &trust,
                config.trust.allow_unsigned,
                &pkg,
                &p.path.display().to_string(),
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", context()))?;
            // Exactly the bytes just checked are loaded.
            let installed = catalog
                .load_configured(
                    &p.name,
                    &p.path,
                    &pkg.manifest,
                    &pkg.component,
                    provenance.map(|p| p.signer),
                )
                .with_context(context)?;
            info!(plugin = %p.name, version = %installed.manifest.version, path = %p.path.display(), "plugin loaded");
        }
        let tenants = crate::tenants::TenantTable::load(store.as_ref(), &config.tenants).await?;
        for t in tenants.all() {
            if let Err(e) = crate::tenants::validate(&catalog, &t) {
                if config.tenant(&t.domain).is_some_and(|f| *f == *t) {
                    anyhow::bail!("{}: {e}", config.source.display());
                }
                warn!(tenant = %t.domain, "stored tenant does not validate: {e}");
            }
        }

        let registrar = Registrar::load(
            store.clone(),
            ExpiryPolicy {
                min: s.register_min_expires,
                max: s.register_max_expires,
                default: s.register_default_expires,
            },
        )
        .await?;
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let nonces = NonceManager::new(secret, Duration::from_secs(s.nonce_lifetime_secs));
        let cdr = CdrWriter::open(&s.data_dir.join("cdr.jsonl"))?;
        let trust = Arc::new(std::sync::RwLock::new(trust));
        let licences = Arc::new(crate::licensing::Licences::open(&config, trust.clone())?);
        let core = Arc::new(Core {
            trust,
            licences,
            prompts: Prompts::new(s.prompts_dir.clone(), s.data_dir.clone()),
            config: config.clone(),
            sip: OnceLock::new(),
            store,
            media,
            catalog,
            tenants,
            faults: Default::default(),
            live: Mutex::new(HashMap::new()),
            events: Default::default(),
            http: crate::http_out::HttpPool::new(s.http_ca_file.as_deref())
                .context("outbound HTTP for plugins")?,
            admitted: Mutex::new(HashMap::new()),
            registrar,
            nonces,
            digest_algorithms: s
                .digest_algorithms
                .iter()
                .filter_map(|a| plugboard_sip::auth::Algorithm::from_token(a))
                .collect(),
            cdr,
            stats: Stats::default(),
            dialogs: Mutex::new(HashMap::new()),
            invites: Mutex::new(HashMap::new()),
            mwi: Default::default(),
            mail: OnceLock::new(),
            mail_worker: Mutex::new(None),
            services: Default::default(),
        });
        let queue = plugboard_mail::MailQueue::open(
            core.store.clone(),
            Arc::new(crate::services::TenantSmtp(Arc::downgrade(&core))),
            plugboard_mail::QueueOptions {
                base_delay: Duration::from_millis(s.mail_retry_ms.max(1)),
                max_delay: Duration::from_secs(s.mail_retry_max_s.max(1)),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the mail queue: {e}"))?;
        *core.mail_worker.lock().expect("mail worker") = Some(queue.start());
        let _ = core.mail.set(queue);
        let handle = transport::start(
            s.sip_udp,
            s.sip_tcp,
            advertise,
            Arc::new(CoreDispatcher(core.clone())),
        )
        .await?;
        info!(udp = ?handle.udp_addr, tcp = ?handle.tcp_addr, "SIP listening");
        let _ = core.sip.set(handle);
        crate::mwi::start_sweeper(&core);
        let ticker = core.clone();
        tokio::spawn(async move {
            // Reminders and licence file changes: every second under a test
            // clock, every minute otherwise.
            let period = if ticker.licences.test_clock {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(60)
            };
            loop {
                ticker.licences.tick(ticker.store.as_ref()).await;
                tokio::time::sleep(period).await;
            }
        });
        Ok(Server { core })
    }

    /// Makes everything durable before the process exits.
    pub async fn shutdown(&self) {
        // Attempts in progress finish (and their mails leave the queue)
        // before the process exits, so a clean stop sends nothing twice.
        if let Some(q) = self.core.mail.get() {
            q.stop();
            let worker = self.core.mail_worker.lock().expect("mail worker").take();
            if let Some(w) = worker
                && tokio::time::timeout(Duration::from_secs(10), w)
                    .await
                    .is_err()
            {
                warn!(
                    "mail attempts still running at shutdown; they are retried at the next start"
                );
            }
        }
        if let Err(e) = self.core.store.flush().await {
            warn!("flushing storage at shutdown: {e}");
        }
    }

    /// The bound SIP UDP address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.core.sip().udp_addr
    }
    /// The bound SIP TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.core.sip().tcp_addr
    }
}

fn default_advertise(config: &Config) -> IpAddr {
    match config.server.sip_udp.or(config.server.sip_tcp) {
        Some(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

/// A call counted against its tenant's `max_calls` until dropped.
pub struct CallSlot {
    core: Arc<Core>,
    tenant: String,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        let mut m = self.core.admitted.lock().expect("admitted lock");
        if let Some(n) = m.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Core {
    /// Admits a call for `tenant`, or `None` when it is at `limits.max_calls`.
    pub fn admit(self: &Arc<Self>, tenant: &Tenant) -> Option<CallSlot> {
        let mut m = self.admitted.lock().expect("admitted lock");
        let n = m.entry(tenant.domain.clone()).or_insert(0);
        if tenant.limits.max_calls.is_some_and(|max| *n >= max) {
            return None;
        }
        *n += 1;
        Some(CallSlot {
            core: self.clone(),
            tenant: tenant.domain.clone(),
        })
    }

    /// The SIP driver handle (set once the sockets are bound).
    pub fn sip(&self) -> &SipHandle {
        self.sip.get().expect("SIP driver started")
    }

    /// The tenant a request is for: Request-URI host, else the To host (DESIGN.md).
    pub fn tenant_of(&self, req: &Request) -> Option<Arc<Tenant>> {
        if let Some(t) = self.tenants.get(&req.uri.host) {
            return Some(t);
        }
        let to = req.headers.to_addr().ok()?;
        self.tenants.get(&to.uri.host)
    }

    /// The tenant a request from `peer` belongs to: by domain, else the
    /// tenant that has a trunk at that exact address (a peer PBX addresses
    /// requests to our IP, not to the tenant's domain).
    pub fn tenant_for(&self, req: &Request, peer: Peer) -> Option<Arc<Tenant>> {
        if let Some(t) = self.tenant_of(req) {
            return Some(t);
        }
        if peer.transport != plugboard_sip::transaction::Transport::Udp {
            return None;
        }
        let mut found = self
            .tenants
            .all()
            .into_iter()
            .filter(|t| t.trunk_at(peer.addr).is_some());
        let first = found.next()?;
        if found.next().is_some() {
            warn!(peer = %peer.addr, "a trunk address is configured in several tenants: refused");
            return None;
        }
        Some(first)
    }

    pub(crate) fn register_dialog(&self, call_id: &str, tag: &str, side: Side, tx: LegSender) {
        self.dialogs
            .lock()
            .expect("dialogs lock")
            .insert((call_id.to_string(), tag.to_string()), (side, tx));
    }

    pub(crate) fn unregister_dialog(&self, call_id: &str, tag: &str) {
        self.dialogs
            .lock()
            .expect("dialogs lock")
            .remove(&(call_id.to_string(), tag.to_string()));
    }

    fn find_dialog(&self, req: &Request) -> Option<(Side, LegSender)> {
        let call_id = req.headers.call_id()?;
        let to = req.headers.to_addr().ok()?;
        let tag = to.tag()?;
        self.dialogs
            .lock()
            .expect("dialogs lock")
            .get(&(call_id.to_string(), tag.to_string()))
            .cloned()
    }

    /// Where stock prompts live.
    pub fn prompts_dir(&self) -> PathBuf {
        self.config.server.prompts_dir.clone()
    }
}

struct CoreDispatcher(Arc<Core>);

impl Dispatcher for CoreDispatcher {
    fn request(&self, key: TxKey, req: Request, peer: Peer) {
        let core = self.0.clone();
        let sip = core.sip().clone();
        let in_dialog = req
            .headers
            .to_addr()
            .map(|t| t.tag().is_some())
            .unwrap_or(false);
        if in_dialog {
            if req.method == Method::Subscribe && core.mwi.owns(&req) {
                tokio::spawn(crate::mwi::refresh(core, key, req, peer));
                return;
            }
            match core.find_dialog(&req) {
                Some((side, tx)) => {
                    let _ = tx.send((side, LegMsg::Request { key, req, peer }));
                }
                None if req.method == Method::Options => {
                    sip.respond(key, options_reply(&req));
                }
                None => sip.respond(key, no_such_dialog(&req)),
            }
            return;
        }
        match req.method {
            Method::Register => {
                tokio::spawn(async move {
                    let resp = register(&core, &req, peer).await;
                    core.sip().respond(key, resp);
                });
            }
            Method::Options => sip.respond(key, options_reply(&req)),
            Method::Subscribe => {
                tokio::spawn(crate::mwi::subscribe(core, key, req, peer));
            }
            Method::Invite => {
                tokio::spawn(crate::call::inbound_invite(core, key, req, peer));
            }
            Method::Bye => sip.respond(key, no_such_dialog(&req)),
            _ => {
                let mut r = reply(&req, 405, "Method Not Allowed");
                r.headers.push("Allow", ALLOW);
                sip.respond(key, r);
            }
        }
    }

    fn ack(&self, request: Request, _peer: Peer) {
        if let Some((side, tx)) = self.0.find_dialog(&request) {
            let _ = tx.send((side, LegMsg::Ack(request)));
        }
    }

    fn cancel(&self, invite: TxKey, _request: Request) {
        let tx = self
            .0
            .invites
            .lock()
            .expect("invites lock")
            .get(&invite)
            .cloned();
        if let Some(tx) = tx {
            let _ = tx.send((Side::A, LegMsg::Cancel));
        }
    }
}

fn options_reply(req: &Request) -> plugboard_sip::Response {
    let mut r = reply(req, 200, "OK");
    r.headers.push("Allow", ALLOW);
    r.headers.push("Accept", "application/sdp");
    r.headers.push("Supported", "");
    r.headers
        .push("Server", concat!("plugboard/", env!("CARGO_PKG_VERSION")));
    r
}

async fn register(core: &Arc<Core>, req: &Request, peer: Peer) -> plugboard_sip::Response {
    let Some(tenant) = core.tenant_of(req) else {
        return reject(req, 404, "Not Found", "unknown domain");
    };
    let to = match req.headers.to_addr() {
        Ok(t) => t,
        Err(e) => return reject(req, 400, "Bad Request", &format!("bad To: {e}")),
    };
    if !to.uri.is_sip() {
        return reject(req, 400, "Bad Request", "To must be a SIP URI");
    }
    let user = to.uri.user_unescaped().unwrap_or_default();
    if tenant.user(&user).is_none() {
        return reject(req, 404, "Not Found", "unknown user");
    }
    match authenticate(
        req,
        &tenant,
        &core.nonces,
        &core.digest_algorithms,
        Some(&user),
    ) {
        AuthResult::Reject(r) => r,
        AuthResult::Ok(_) => {
            core.stats.registrations.fetch_add(1, Ordering::Relaxed);
            core.stats.tenant(&tenant.domain, |t| t.registrations += 1);
            let r = core
                .registrar
                .register(&tenant.domain, &user, req, peer)
                .await;
            if r.status != 200 {
                warn!(tenant = %tenant.domain, %user, status = r.status, "REGISTER refused");
            } else {
                let contacts = core.registrar.targets(&tenant.domain, &user).len() as u32;
                core.events.publish(
                    core,
                    &tenant,
                    plugboard_plugins::EventKind::RegistrationChanged {
                        user: user.to_string(),
                        contacts,
                    },
                );
            }
            r
        }
    }
}
