//! The registrar (RFC 3261 section 10.3): bindings per (tenant, user), several
//! contacts per user, `*` to remove them all, 423 Interval Too Brief below the
//! minimum expiry. Bindings live in memory for lookups and are written through
//! to the store, so they survive a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use plugboard_sip::transaction::{Peer, Transport};
use plugboard_sip::{Contacts, Request, Response};
use plugboard_store::{Binding, Store};
use tracing::info;

use crate::reply::{reject, reply};

/// Registration limits from the server config.
#[derive(Clone, Copy, Debug)]
pub struct ExpiryPolicy {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

/// A registered contact, ready to be called.
#[derive(Clone, Debug)]
pub struct Target {
    /// The Contact URI (the Request-URI of the INVITE).
    pub contact: String,
    /// Where to send it: the address the REGISTER came from (NAT friendly).
    pub peer: Peer,
}

type Key = (String, String);

/// In-memory bindings backed by the store.
pub struct Registrar {
    bindings: Mutex<HashMap<Key, Vec<Binding>>>,
    store: Arc<dyn Store>,
    policy: ExpiryPolicy,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// "udp:1.2.3.4:5060" ↔ Peer.
pub fn peer_to_string(p: &Peer) -> String {
    let t = match p.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    format!("{t}:{}", p.addr)
}

/// Parses what [`peer_to_string`] printed.
pub fn peer_from_str(s: &str) -> Option<Peer> {
    let (t, a) = s.split_once(':')?;
    let transport = match t {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        _ => return None,
    };
    Some(Peer {
        transport,
        addr: a.parse().ok()?,
    })
}

impl Registrar {
    /// Loads the stored bindings.
    pub async fn load(store: Arc<dyn Store>, policy: ExpiryPolicy) -> anyhow::Result<Registrar> {
        let now = now_secs();
        let mut map = HashMap::new();
        for (tenant, user, b) in store.all_bindings().await? {
            let live: Vec<Binding> = b.into_iter().filter(|b| b.expires_at_unix > now).collect();
            if !live.is_empty() {
                map.insert((tenant, user), live);
            }
        }
        info!(users = map.len(), "registrations loaded");
        Ok(Registrar {
            bindings: Mutex::new(map),
            store,
            policy,
        })
    }

    /// The live contacts of a user.
    pub fn targets(&self, tenant: &str, user: &str) -> Vec<Target> {
        let now = now_secs();
        let map = self.bindings.lock().expect("registrar lock");
        map.get(&(tenant.to_string(), user.to_string()))
            .map(|v| {
                v.iter()
                    .filter(|b| b.expires_at_unix > now)
                    .filter_map(|b| {
                        Some(Target {
                            contact: b.contact.clone(),
                            peer: peer_from_str(&b.source)?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The live bindings of every user of `tenant`: (user, binding), by user.
    pub fn tenant_bindings(&self, tenant: &str) -> Vec<(String, plugboard_store::Binding)> {
        let now = now_secs();
        let map = self.bindings.lock().expect("registrar lock");
        let mut out: Vec<(String, plugboard_store::Binding)> = map
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|((_, u), v)| {
                v.iter()
                    .filter(|b| b.expires_at_unix > now)
                    .map(|b| (u.clone(), b.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Live registered users per tenant.
    pub fn users_per_tenant(&self) -> HashMap<String, usize> {
        let now = now_secs();
        let map = self.bindings.lock().expect("registrar lock");
        let mut out = HashMap::new();
        for ((t, _), v) in map.iter() {
            if v.iter().any(|b| b.expires_at_unix > now) {
                *out.entry(t.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Number of (tenant, user) pairs with at least one live binding.
    pub fn registered_users(&self) -> usize {
        let now = now_secs();
        let map = self.bindings.lock().expect("registrar lock");
        map.values()
            .filter(|v| v.iter().any(|b| b.expires_at_unix > now))
            .count()
    }

    /// Handles an authenticated REGISTER for `user` of `tenant`.
    pub async fn register(&self, tenant: &str, user: &str, req: &Request, peer: Peer) -> Response {
        let now = now_secs();
        let contacts = match req.headers.contacts() {
            Ok(c) => c,
            Err(e) => return reject(req, 400, "Bad Request", &format!("bad Contact: {e}")),
        };
        let call_id = req.headers.call_id().unwrap_or_default().to_string();
        let cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let header_expires = req.headers.expires();
        let key = (tenant.to_string(), user.to_string());
        let user_agent = req.headers.get("User-Agent").map(str::to_string);

        let mut current: Vec<Binding> = {
            let map = self.bindings.lock().expect("registrar lock");
            map.get(&key).cloned().unwrap_or_default()
        };
        current.retain(|b| b.expires_at_unix > now);

        match contacts {
            None => {} // a query: answer with the current bindings
            Some(Contacts::Star) => {
                // RFC 3261 10.3 step 6: `*` only with Expires: 0 and nothing else.
                if header_expires != Some(0) || req.headers.count("Contact") != 1 {
                    return reject(req, 400, "Bad Request", "Contact: * needs Expires: 0");
                }
                current.clear();
            }
            Some(Contacts::List(list)) => {
                for c in &list {
                    let expires = c
                        .param("expires")
                        .flatten()
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|v| v.min(u32::MAX as u64) as u32)
                        .or(header_expires)
                        .unwrap_or(self.policy.default);
                    if expires != 0 && expires < self.policy.min {
                        let mut r = reply(req, 423, "Interval Too Brief");
                        r.headers.push("Min-Expires", self.policy.min.to_string());
                        return r;
                    }
                    let expires = expires.min(self.policy.max);
                    let contact = c.uri.to_string();
                    if let Some(pos) = current.iter().position(|b| b.contact == contact) {
                        let old = &current[pos];
                        if old.call_id == call_id && old.cseq >= cseq {
                            return reject(req, 500, "Server Internal Error", "CSeq out of order");
                        }
                        current.remove(pos);
                    }
                    if expires > 0 {
                        current.push(Binding {
                            contact,
                            expires_at_unix: now + expires as u64,
                            source: peer_to_string(&peer),
                            call_id: call_id.clone(),
                            cseq,
                            q: c.param("q").flatten().and_then(|q| q.parse().ok()),
                            user_agent: user_agent.clone(),
                        });
                    }
                }
            }
        }

        if let Err(e) = self.store.set_bindings(tenant, user, &current).await {
            return reject(req, 500, "Server Internal Error", &format!("storage: {e}"));
        }
        let mut resp = reply(req, 200, "OK");
        for b in &current {
            resp.headers.push(
                "Contact",
                format!(
                    "<{}>;expires={}",
                    b.contact,
                    b.expires_at_unix.saturating_sub(now)
                ),
            );
        }
        {
            let mut map = self.bindings.lock().expect("registrar lock");
            if current.is_empty() {
                map.remove(&key);
            } else {
                map.insert(key, current);
            }
        }
        resp
    }
}
