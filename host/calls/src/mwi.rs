//! Message waiting (RFC 3842): the counts of every mailbox, subscriptions to
//! `message-summary`, and the NOTIFYs sent when counts change.
//!
//! - **Counts** are set by plugins (`mwi.set-counts`) per (tenant, account)
//!   and kept in the store (kind `mwi`), so a restart keeps the lamps right.
//! - **SUBSCRIBE** `Event: message-summary` to `sip:ACCOUNT@DOMAIN` is
//!   authenticated like a REGISTER (digest, the user may only subscribe to
//!   their own mailbox), answered 200 with the granted `Expires` (60-3600 s,
//!   default 3600), and followed at once by a NOTIFY with the counts. A
//!   refresh inside the dialog renews it; `Expires: 0` ends it with a final
//!   `terminated` NOTIFY; expired subscriptions are swept every 10 s. Other
//!   event packages get 489 Bad Event.
//! - **Unsolicited NOTIFY** (no subscription; what most desk phones expect):
//!   to every registered contact of the account's user that has no
//!   subscription of its own, and for accounts
//!   that are not users of the tenant, to each trunk peer with `mwi = true`
//!   (plugboard as the voicemail server of another PBX).
//!
//! Every NOTIFY carries `Content-Type: application/simple-message-summary`:
//!
//! ```text
//! Messages-Waiting: yes
//! Message-Account: sip:101@acme.example
//! Voice-Message: 2/8 (0/2)
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugboard_plugins::MwiCounts;
use plugboard_sip::message::set_param;
use plugboard_sip::transaction::{Peer, TxKey};
use plugboard_sip::util::{new_call_id, new_tag};
use plugboard_sip::{Method, NameAddr, Request, Response, Uri};
use plugboard_tenants::Tenant;
use tracing::{debug, info, warn};

use crate::dialog::{Dialog, contact, new_via};
use crate::reply::{reject, reply, response_with_tag};
use crate::server::Core;

const KIND: &str = "mwi";
/// Shortest subscription granted; shorter requests get 423 Interval Too Brief.
pub const MIN_EXPIRES: u32 = 60;
/// Longest subscription granted (and the default).
pub const MAX_EXPIRES: u32 = 3600;
const EVENT: &str = "message-summary";
const CONTENT_TYPE: &str = "application/simple-message-summary";

struct Subscription {
    tenant: String,
    account: String,
    dialog: Dialog,
    expires_at: Instant,
    /// The SUBSCRIBE's `Event` value, echoed with its `id` (RFC 6665 8.2.3).
    event: String,
}

/// Counts and subscriptions of every tenant.
#[derive(Default)]
pub struct Mwi {
    counts: Mutex<HashMap<(String, String), MwiCounts>>,
    /// By (Call-ID, our tag).
    subs: Mutex<HashMap<(String, String), Subscription>>,
    /// Serialises `set` (read, store, cache) so store and cache agree.
    writing: tokio::sync::Mutex<()>,
}

/// The `application/simple-message-summary` body (RFC 3842 section 5.2).
pub fn summary_body(domain: &str, account: &str, c: &MwiCounts) -> String {
    format!(
        "Messages-Waiting: {}\r\nMessage-Account: sip:{account}@{domain}\r\nVoice-Message: {}/{} ({}/{})\r\n",
        if c.new_messages > 0 { "yes" } else { "no" },
        c.new_messages,
        c.old_messages,
        c.new_urgent,
        c.old_urgent
    )
}

fn doc_key(tenant: &str, account: &str) -> String {
    format!("{tenant}\n{account}")
}

impl Mwi {
    /// The counts last set for an account (zero if never).
    pub async fn get(&self, core: &Core, tenant: &str, account: &str) -> MwiCounts {
        let key = (tenant.to_string(), account.to_string());
        if let Some(c) = self.counts.lock().expect("mwi lock").get(&key) {
            return *c;
        }
        let stored = match core.store.doc_get(KIND, &doc_key(tenant, account)).await {
            Ok(Some(b)) => serde_json::from_slice(&b).unwrap_or_default(),
            // Not cached: any string may be asked for.
            Ok(None) => return MwiCounts::default(),
            Err(e) => {
                warn!(%tenant, %account, "cannot read message-waiting counts: {e}");
                return MwiCounts::default();
            }
        };
        // A concurrent `set` may have cached a newer value meanwhile.
        *self
            .counts
            .lock()
            .expect("mwi lock")
            .entry(key)
            .or_insert(stored)
    }

    /// Sets the counts of an account; on a change they are stored and every
    /// subscriber, contact and MWI trunk peer is notified.
    pub async fn set(
        &self,
        core: &Arc<Core>,
        tenant: &Arc<Tenant>,
        account: &str,
        counts: MwiCounts,
    ) -> Result<(), String> {
        if !plugboard_tenants::valid_number(account) {
            return Err(format!("account {account:?} is not a number or extension"));
        }
        let _writing = self.writing.lock().await;
        if self.get(core, &tenant.domain, account).await == counts {
            return Ok(());
        }
        let value = serde_json::to_vec(&counts).map_err(|e| e.to_string())?;
        core.store
            .doc_put(KIND, &doc_key(&tenant.domain, account), &value)
            .await
            .map_err(|e| format!("cannot store the counts: {e}"))?;
        self.counts
            .lock()
            .expect("mwi lock")
            .insert((tenant.domain.clone(), account.to_string()), counts);
        info!(tenant = %tenant.domain, %account, new = counts.new_messages, old = counts.old_messages, "message waiting changed");
        let core = core.clone();
        let tenant = tenant.clone();
        let account = account.to_string();
        tokio::spawn(async move { notify_all(&core, &tenant, &account).await });
        Ok(())
    }

    /// The cached counts (zero when never read or set).
    fn cached(&self, tenant: &str, account: &str) -> MwiCounts {
        self.counts
            .lock()
            .expect("mwi lock")
            .get(&(tenant.to_string(), account.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// Whether an in-dialog request belongs to one of our subscriptions.
    pub fn owns(&self, req: &Request) -> bool {
        dialog_key(req).is_some_and(|k| self.subs.lock().expect("mwi lock").contains_key(&k))
    }

    /// Drops expired subscriptions, each with a final `terminated` NOTIFY.
    pub fn sweep(&self, core: &Arc<Core>) {
        let now = Instant::now();
        let expired: Vec<Subscription> = {
            let mut subs = self.subs.lock().expect("mwi lock");
            let keys: Vec<_> = subs
                .iter()
                .filter(|(_, s)| s.expires_at <= now)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter().filter_map(|k| subs.remove(&k)).collect()
        };
        for mut s in expired {
            debug!(tenant = %s.tenant, account = %s.account, "subscription expired");
            let core = core.clone();
            tokio::spawn(async move {
                let counts = core.mwi.get(&core, &s.tenant, &s.account).await;
                let req = in_dialog_notify(&mut s, &counts, "terminated;reason=timeout");
                let _ = core
                    .sip()
                    .request_final(s.dialog.peer, req, Duration::from_secs(5))
                    .await;
            });
        }
    }
}

fn dialog_key(req: &Request) -> Option<(String, String)> {
    let call_id = req.headers.call_id()?.to_string();
    let to = req.headers.to_addr().ok()?;
    Some((call_id, to.tag()?.to_string()))
}

/// Starts the sweep of expired subscriptions.
pub fn start_sweeper(core: &Arc<Core>) {
    let weak = Arc::downgrade(core);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let Some(core) = weak.upgrade() else { return };
            core.mwi.sweep(&core);
        }
    });
}

fn granted_expires(req: &Request) -> Result<u32, Response> {
    let Some(v) = req.headers.get("Expires") else {
        return Ok(MAX_EXPIRES);
    };
    let Ok(secs) = v.trim().parse::<u64>() else {
        return Err(reject(req, 400, "Bad Request", "Expires is not a number"));
    };
    if secs == 0 {
        return Ok(0);
    }
    if secs < MIN_EXPIRES as u64 {
        let mut r = reply(req, 423, "Interval Too Brief");
        r.headers.push("Min-Expires", MIN_EXPIRES.to_string());
        return Err(r);
    }
    Ok(secs.min(MAX_EXPIRES as u64) as u32)
}

fn bad_event(req: &Request) -> Option<Response> {
    let event = req.headers.get("Event").unwrap_or_default();
    let package = event.split(';').next().unwrap_or_default().trim();
    if package.eq_ignore_ascii_case(EVENT) {
        return None;
    }
    let mut r = reply(req, 489, "Bad Event");
    r.headers.push("Allow-Events", EVENT);
    Some(r)
}

/// A SUBSCRIBE outside a dialog.
pub async fn subscribe(core: Arc<Core>, key: TxKey, req: Request, peer: Peer) {
    let sip = core.sip().clone();
    if let Some(r) = bad_event(&req) {
        return sip.respond(key, r);
    }
    let Some(tenant) = core.tenant_of(&req) else {
        return sip.respond(key, reject(&req, 404, "Not Found", "unknown domain"));
    };
    let account = req.uri.user_unescaped().unwrap_or_default();
    // Challenge first: an unauthenticated client learns nothing about
    // which mailboxes exist (the credentials must name `account` itself).
    match crate::digest::authenticate(
        &req,
        &tenant,
        &core.nonces,
        &core.digest_algorithms,
        Some(&account),
    ) {
        crate::digest::AuthResult::Ok(_) => {}
        crate::digest::AuthResult::Reject(r) => return sip.respond(key, r),
    }
    if tenant.user(&account).is_none() {
        return sip.respond(key, reject(&req, 404, "Not Found", "no such mailbox"));
    }
    let expires = match granted_expires(&req) {
        Ok(e) => e,
        Err(r) => return sip.respond(key, r),
    };
    let (Ok(from), Ok(to)) = (req.headers.from_addr(), req.headers.to_addr()) else {
        return sip.respond(key, reject(&req, 400, "Bad Request", "From/To"));
    };
    let Some(target) = crate::call::remote_target(&req.headers) else {
        return sip.respond(key, reject(&req, 400, "Bad Request", "no Contact"));
    };
    let tag = new_tag();
    let local_addr = sip.local_addr(peer.transport);
    let mut r = response_with_tag(&req, 200, "OK", &tag);
    r.headers.push("Expires", expires.to_string());
    r.headers
        .push("Contact", contact(peer.transport, local_addr));
    sip.respond(key, r);
    let mut local = to;
    set_param(&mut local.params, "tag", Some(tag.clone()));
    let mut sub = Subscription {
        tenant: tenant.domain.clone(),
        account: account.clone(),
        dialog: Dialog {
            call_id: req.headers.call_id().unwrap_or_default().to_string(),
            local,
            remote: from,
            remote_target: target,
            local_cseq: 0,
            peer,
            local_addr,
        },
        expires_at: Instant::now() + Duration::from_secs(expires as u64),
        event: req.headers.get("Event").unwrap_or(EVENT).trim().to_string(),
    };
    info!(tenant = %tenant.domain, %account, expires, "message-summary subscription");
    // Warm the cache, then build the NOTIFY under the lock with the counts
    // as they are now: a change racing with this sees the subscription.
    core.mwi.get(&core, &tenant.domain, &account).await;
    let notify = if expires == 0 {
        let counts = core.mwi.cached(&tenant.domain, &account);
        in_dialog_notify(&mut sub, &counts, "terminated;reason=timeout")
    } else {
        let mut subs = core.mwi.subs.lock().expect("mwi lock");
        let counts = core.mwi.cached(&tenant.domain, &account);
        let n = in_dialog_notify(&mut sub, &counts, &format!("active;expires={expires}"));
        subs.insert((sub.dialog.call_id.clone(), tag), sub);
        n
    };
    send_notify(&core, peer, notify).await;
}

/// A SUBSCRIBE inside one of our subscription dialogs (refresh or end). It
/// is a target refresh (RFC 6665 4.1.2.1): NOTIFYs follow its source and
/// Contact from now on.
pub async fn refresh(core: Arc<Core>, key: TxKey, req: Request, peer: Peer) {
    let sip = core.sip().clone();
    if let Some(r) = bad_event(&req) {
        return sip.respond(key, r);
    }
    let expires = match granted_expires(&req) {
        Ok(e) => e,
        Err(r) => return sip.respond(key, r),
    };
    let Some(k) = dialog_key(&req) else {
        return sip.respond(key, crate::reply::no_such_dialog(&req));
    };
    let Some((tenant, account)) = core
        .mwi
        .subs
        .lock()
        .expect("mwi lock")
        .get(&k)
        .map(|s| (s.tenant.clone(), s.account.clone()))
    else {
        return sip.respond(key, crate::reply::no_such_dialog(&req));
    };
    core.mwi.get(&core, &tenant, &account).await;
    let target = crate::call::remote_target(&req.headers);
    let notify = {
        let mut subs = core.mwi.subs.lock().expect("mwi lock");
        let counts = core.mwi.cached(&tenant, &account);
        let Some(sub) = subs.get_mut(&k) else {
            drop(subs);
            return sip.respond(key, crate::reply::no_such_dialog(&req));
        };
        sub.dialog.peer = peer;
        if let Some(t) = target {
            sub.dialog.remote_target = t;
        }
        let mut r = reply(&req, 200, "OK");
        r.headers.push("Expires", expires.to_string());
        r.headers
            .push("Contact", contact(peer.transport, sub.dialog.local_addr));
        sip.respond(key, r);
        if expires == 0 {
            let mut sub = subs.remove(&k).expect("present");
            in_dialog_notify(&mut sub, &counts, "terminated;reason=timeout")
        } else {
            sub.expires_at = Instant::now() + Duration::from_secs(expires as u64);
            in_dialog_notify(sub, &counts, &format!("active;expires={expires}"))
        }
    };
    send_notify(&core, peer, notify).await;
}

fn in_dialog_notify(sub: &mut Subscription, counts: &MwiCounts, state: &str) -> Request {
    let mut n = sub.dialog.request(Method::Notify);
    finish_notify(&mut n, &sub.event, &sub.tenant, &sub.account, counts, state);
    n
}

fn finish_notify(
    n: &mut Request,
    event: &str,
    domain: &str,
    account: &str,
    c: &MwiCounts,
    state: &str,
) {
    n.headers.push("Event", event);
    n.headers.push("Subscription-State", state);
    n.headers.push("Content-Type", CONTENT_TYPE);
    n.body = summary_body(domain, account, c).into_bytes();
}

/// An out-of-dialog NOTIFY to `uri` at `peer`.
fn unsolicited_notify(
    core: &Core,
    peer: Peer,
    uri: Uri,
    domain: &str,
    account: &str,
    c: &MwiCounts,
) -> Request {
    let local = core.sip().local_addr(peer.transport);
    let mut n = Request::new(Method::Notify, uri.clone());
    n.headers.push("Via", new_via(peer.transport, local));
    n.headers.push("Max-Forwards", "70");
    let mut from = NameAddr::new(Uri::sip(Some(account), domain, None));
    set_param(&mut from.params, "tag", Some(new_tag()));
    n.headers.push("From", from.to_string());
    let mut to = NameAddr::new(uri);
    to.params.clear();
    n.headers.push("To", to.to_string());
    n.headers.push("Call-ID", new_call_id(domain));
    n.headers.push("CSeq", "1 NOTIFY");
    n.headers.push("Contact", contact(peer.transport, local));
    finish_notify(&mut n, EVENT, domain, account, c, "active");
    n
}

async fn send_notify(core: &Arc<Core>, peer: Peer, n: Request) {
    let key = dialog_key_of_notify(&n);
    match core
        .sip()
        .request_final(peer, n, Duration::from_secs(10))
        .await
    {
        Some(r) if r.status < 300 => {}
        // RFC 6665 4.2.2: a failure without Retry-After ends the subscription.
        Some(r) if r.headers.get("Retry-After").is_some() => {
            debug!(status = r.status, "NOTIFY refused for now");
        }
        Some(r) => {
            debug!(status = r.status, "NOTIFY refused: subscription ended");
            if let Some(k) = key {
                core.mwi.subs.lock().expect("mwi lock").remove(&k);
            }
        }
        None => {
            debug!(peer = %peer.addr, "NOTIFY timed out: subscription ended");
            if let Some(k) = key {
                core.mwi.subs.lock().expect("mwi lock").remove(&k);
            }
        }
    }
}

/// (Call-ID, our tag) of a NOTIFY we send: our tag is in From.
fn dialog_key_of_notify(n: &Request) -> Option<(String, String)> {
    let from = n.headers.from_addr().ok()?;
    Some((n.headers.call_id()?.to_string(), from.tag()?.to_string()))
}

async fn notify_all(core: &Arc<Core>, tenant: &Tenant, account: &str) {
    let mut sends = Vec::new();
    let counts;
    {
        let mut subs = core.mwi.subs.lock().expect("mwi lock");
        // The counts as they are now, under the lock that orders CSeqs: the
        // highest CSeq always carries the latest counts.
        counts = core.mwi.cached(&tenant.domain, account);
        let now = Instant::now();
        for s in subs.values_mut() {
            if s.tenant == tenant.domain && s.account == account && s.expires_at > now {
                let left = s.expires_at.saturating_duration_since(now).as_secs().max(1);
                let peer = s.dialog.peer;
                sends.push((
                    peer,
                    in_dialog_notify(s, &counts, &format!("active;expires={left}")),
                ));
            }
        }
    }
    if tenant.user(account).is_some() {
        for t in core.registrar.targets(&tenant.domain, account) {
            let Ok(uri) = t.contact.parse::<Uri>() else {
                continue;
            };
            sends.push((
                t.peer,
                unsolicited_notify(core, t.peer, uri, &tenant.domain, account, &counts),
            ));
        }
    } else {
        for trunk in tenant.trunks.iter().filter(|t| t.mwi) {
            let peer = Peer {
                transport: plugboard_sip::transaction::Transport::Udp,
                addr: trunk.address,
            };
            let uri = Uri::sip(
                Some(account),
                &trunk.address.ip().to_string(),
                Some(trunk.address.port()),
            );
            sends.push((
                peer,
                unsolicited_notify(core, peer, uri, &tenant.domain, account, &counts),
            ));
        }
    }
    // Each target on its own: a dead phone does not delay the others.
    for (peer, n) in sends {
        let core = core.clone();
        tokio::spawn(async move { send_notify(&core, peer, n).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_follows_rfc_3842() {
        let c = MwiCounts {
            new_messages: 2,
            old_messages: 8,
            new_urgent: 0,
            old_urgent: 2,
        };
        assert_eq!(
            summary_body("acme.example", "101", &c),
            "Messages-Waiting: yes\r\nMessage-Account: sip:101@acme.example\r\nVoice-Message: 2/8 (0/2)\r\n"
        );
        let none = MwiCounts::default();
        assert!(summary_body("a.example", "1", &none).starts_with("Messages-Waiting: no\r\n"));
    }
}
