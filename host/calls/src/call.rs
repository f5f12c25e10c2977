//! One inbound call: the caller's leg (A), its media session, the routing
//! decision, and the B2BUA logic that rings a user's contacts (B legs).
//!
//! Two tasks work on a call: the *flow* (bridging to a user, or a plugin run)
//! and the *watcher*, which answers in-dialog requests (BYE, re-INVITE,
//! CANCEL) while the flow is busy, and tells the flow through watch channels.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugboard_media::sdp;
use plugboard_media::{BridgeHandle, Session};
use plugboard_sip::message::set_param;
use plugboard_sip::transaction::{Peer, TxKey, cancel_for};
use plugboard_sip::util::{new_call_id, new_tag};
use plugboard_sip::{Message, Method, NameAddr, Request, Response, Uri};
use plugboard_tenants::{DialTarget, Tenant};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::dialog::{Dialog, contact, new_via};
use crate::reply::{reject, response_with_tag};
use crate::server::{Core, LegMsg, LegSender, Side};
use crate::transport::ClientEvent;

/// How a dial attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialResult {
    /// The callee answered; returned after the bridge ended.
    Answered,
    Busy,
    NoAnswer,
    /// Unknown target or signalling failure; carries the SIP status to map to.
    Failed(u16),
    /// The caller hung up while ringing.
    CallerGone,
}

/// The caller's leg and what the flow and the watcher share.
pub struct CallShared {
    pub core: Arc<Core>,
    pub tenant: Arc<Tenant>,
    pub invite: Request,
    pub invite_key: TxKey,
    pub peer_a: Peer,
    pub tag_a: String,
    pub media_a: Session,
    /// Our SDP answer to the caller's offer.
    pub answer_sdp: String,
    pub state: Mutex<AState>,
    /// Becomes true when the caller hung up or cancelled.
    pub gone: watch::Sender<bool>,
    /// Becomes true when the current B leg hung up.
    pub b_gone: watch::Sender<bool>,
    /// Becomes true when the caller ACKed our 200 OK.
    pub acked: watch::Sender<bool>,
    pub leg_tx: LegSender,
    pub started: SystemTime,
    /// Who called whom, for events (set once routed).
    pub call_event: Mutex<Option<plugboard_plugins::CallEvent>>,
}

/// Mutable state of the caller's leg.
#[derive(Default)]
pub struct AState {
    pub answered: bool,
    pub finished: bool,
    pub dialog_a: Option<Dialog>,
    pub dialog_b: Option<Dialog>,
    pub answered_at: Option<SystemTime>,
    pub plugin: Option<String>,
    pub plugin_version: Option<String>,
    pub disposition: Option<String>,
    /// `rule:number` when a call rule forwarded the call.
    pub forwarded: Option<String>,
    /// The last redirection by a call rule (the plugin's `redirect.info`).
    pub redirect: Option<plugboard_plugins::Redirection>,
    pub bridge_stats: Option<(u64, u64)>,
    /// Our SDP towards the current B leg (the offer we sent it).
    pub sdp_b: Option<String>,
}

impl CallShared {
    pub fn is_gone(&self) -> bool {
        *self.gone.borrow()
    }

    pub fn call_id(&self) -> &str {
        self.invite.headers.call_id().unwrap_or_default()
    }

    /// Answers the caller with 200 OK and our SDP (idempotent).
    pub fn answer(&self) -> bool {
        let mut st = self.state.lock().expect("call state");
        if st.answered {
            return true;
        }
        if self.is_gone() {
            return false;
        }
        let sip = self.core.sip();
        let local = sip.local_addr(self.peer_a.transport);
        let mut r = response_with_tag(&self.invite, 200, "OK", &self.tag_a);
        r.headers
            .push("Contact", contact(self.peer_a.transport, local));
        r.headers.push("Allow", crate::reply::ALLOW);
        r.headers.push("Content-Type", "application/sdp");
        r.body = self.answer_sdp.clone().into_bytes();
        sip.respond(self.invite_key, r);
        let from = self.invite.headers.from_addr().unwrap_or_default();
        let mut to = self.invite.headers.to_addr().unwrap_or_default();
        set_param(&mut to.params, "tag", Some(self.tag_a.clone()));
        let target = remote_target(&self.invite.headers).unwrap_or_else(|| from.uri.clone());
        st.dialog_a = Some(Dialog {
            call_id: self.call_id().to_string(),
            local: to,
            remote: from,
            remote_target: target,
            local_cseq: 0,
            peer: self.peer_a,
            local_addr: local,
        });
        st.answered = true;
        st.answered_at = Some(SystemTime::now());
        if let Some(ev) = self.call_event.lock().expect("call event").clone() {
            self.core.events.publish(
                &self.core,
                &self.tenant,
                plugboard_plugins::EventKind::CallAnswered(ev),
            );
        }
        self.core
            .stats
            .calls_answered
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Sends a provisional response to the caller (180/183).
    fn ringing(&self) {
        let st = self.state.lock().expect("call state");
        if st.answered || self.is_gone() {
            return;
        }
        let r = response_with_tag(&self.invite, 180, "Ringing", &self.tag_a);
        self.core.sip().respond(self.invite_key, r);
    }

    /// Ends the caller's leg: BYE if answered, else the given final response.
    pub async fn end_a(&self, status: u16, reason: &str, text: &str) {
        self.end_a_with(status, reason, text, None).await
    }

    /// Ends an unanswered caller's leg with 503 and Retry-After (RFC 3261
    /// 21.5.4, 20.33): the service is back after `left`.
    pub async fn end_a_retry(&self, status: u16, text: &str, left: Duration) {
        let secs = left.as_secs().max(1);
        self.end_a_with(status, "Service Unavailable", text, Some(secs))
            .await
    }

    async fn end_a_with(&self, status: u16, reason: &str, text: &str, retry_after: Option<u64>) {
        let bye = {
            let mut st = self.state.lock().expect("call state");
            if st.finished {
                return;
            }
            st.finished = true;
            if self.is_gone() {
                None
            } else if st.answered {
                st.dialog_a.as_mut().map(|d| {
                    let mut b = d.request(Method::Bye);
                    if status >= 400 {
                        b.headers
                            .push("Reason", format!("SIP;cause={status};text=\"{text}\""));
                    }
                    (d.peer, b)
                })
            } else {
                let mut r = reject(&self.invite, status, reason, text);
                if let Some(secs) = retry_after {
                    r.headers.push("Retry-After", secs.to_string());
                }
                r.headers.set(
                    "To",
                    response_with_tag(&self.invite, status, reason, &self.tag_a)
                        .headers
                        .get("To")
                        .unwrap_or_default()
                        .to_string(),
                );
                self.core.sip().respond(self.invite_key, r);
                None
            }
        };
        if bye.is_some() && !*self.acked.borrow() {
            // RFC 3261 15: no BYE before the ACK for our 2xx (or its timeout,
            // 64*T1): the 200 may still be on its way.
            let mut acked = self.acked.subscribe();
            let mut gone = self.gone.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(32), async {
                tokio::select! {
                    _ = wait_true(&mut acked) => {}
                    _ = wait_true(&mut gone) => {}
                }
            })
            .await;
        }
        // The caller may have hung up while we waited: then there is nothing to end.
        let bye = bye.filter(|_| !self.is_gone());
        self.gone.send_replace(true);
        self.media_a.close();
        if let Some((peer, bye)) = bye {
            let _ = self
                .core
                .sip()
                .request_final(peer, bye, Duration::from_secs(5))
                .await;
        }
    }
}

/// The remote target of a dialog: the first Contact URI (RFC 3261 12.1.1, 12.1.2).
pub(crate) fn remote_target(headers: &plugboard_sip::Headers) -> Option<Uri> {
    match headers.contacts().ok().flatten()? {
        plugboard_sip::Contacts::List(l) => l.into_iter().next().map(|n| n.uri),
        plugboard_sip::Contacts::Star => None,
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Entry point for a new INVITE (outside a dialog).
pub async fn inbound_invite(core: Arc<Core>, key: TxKey, req: Request, peer: Peer) {
    let call_id = req.headers.call_id().unwrap_or_default().to_string();
    // Taken before the tenant lookup: a call whose CDR starts after a plugin
    // swap completed saw the tenant as it was after the swap.
    let started = SystemTime::now();
    let Some(tenant) = core.tenant_for(&req, peer) else {
        core.sip()
            .respond(key, reject(&req, 404, "Not Found", "unknown domain"));
        return;
    };
    let span = info_span!("call", tenant = %tenant.domain, call_id = %call_id);
    async move {
        // Callers must be users of the tenant, with credentials (toll fraud is real).
        let from = match req.headers.from_addr() {
            Ok(f) => f,
            Err(e) => {
                core.sip()
                    .respond(key, reject(&req, 400, "Bad Request", &format!("From: {e}")));
                return;
            }
        };
        let from_user = from.uri.user_unescaped().unwrap_or_default();
        // A peer PBX on a configured trunk is trusted by its address; it
        // reaches this tenant's dial plan like a user does.
        let trunk = match peer.transport {
            plugboard_sip::transaction::Transport::Udp => tenant.trunk_at(peer.addr),
            _ => None,
        };
        if let Some(trunk) = trunk {
            info!(trunk = %trunk.name, caller = %from_user, "call from trunk");
        } else {
            match crate::digest::authenticate(
                &req,
                &tenant,
                &core.nonces,
                &core.digest_algorithms,
                Some(&from_user),
            ) {
                crate::digest::AuthResult::Ok(_) => {}
                crate::digest::AuthResult::Reject(r) => {
                    core.sip().respond(key, r);
                    return;
                }
            }
        }
        // Counted until the end of this call (tenant limits.max_calls).
        let Some(_slot) = core.admit(&tenant) else {
            info!("tenant at its call limit");
            let mut r = reject(
                &req,
                503,
                "Service Unavailable",
                "tenant call limit reached",
            );
            r.headers.push("Retry-After", "5");
            core.sip().respond(key, r);
            return;
        };
        // Counted against the licensed concurrent calls (site-wide).
        let _licence_slot = match core.licences.admit_call() {
            Ok(slot) => slot,
            Err(refusal) => {
                info!("licence capacity reached: {refusal}");
                let mut r = reject(&req, 503, "Service Unavailable", &refusal.to_string());
                r.headers.push("Retry-After", "30");
                core.sip().respond(key, r);
                return;
            }
        };
        let dialled = req.uri.user_unescaped().unwrap_or_default();
        let request = plugboard_plugins::ScreenRequest {
            call_id: call_id.clone(),
            tenant: tenant.domain.clone(),
            caller: from_user.clone(),
            caller_name: from.display.clone(),
            callee: dialled.clone(),
            source: crate::registrar::peer_to_string(&peer),
            headers: req
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let number = match crate::screening::screen(&core, &tenant, &dialled, request).await {
            crate::screening::Screened::Route(n) => n,
            crate::screening::Screened::Reject(code, reason) => {
                let mut r = reject(&req, code, "Rejected", &reason);
                r.reason = reason;
                core.sip().respond(key, r);
                return;
            }
        };
        let Some(target) = tenant.route(&number) else {
            core.sip()
                .respond(key, reject(&req, 404, "Not Found", "no such number"));
            return;
        };
        // Media: our answer to the caller's offer.
        let offer = match std::str::from_utf8(&req.body)
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            Some(s) => match sdp::parse_offer(s) {
                Ok(o) => o,
                Err(e) => {
                    core.sip().respond(
                        key,
                        reject(&req, 488, "Not Acceptable Here", &format!("SDP: {e}")),
                    );
                    return;
                }
            },
            None => {
                core.sip().respond(
                    key,
                    reject(&req, 488, "Not Acceptable Here", "an SDP offer is required"),
                );
                return;
            }
        };
        let media_a = match core.media.open_session().await {
            Ok(s) => s,
            Err(e) => {
                warn!("no media port: {e}");
                core.sip().respond(
                    key,
                    reject(&req, 503, "Service Unavailable", "no media port"),
                );
                return;
            }
        };
        let (answer_sdp, negotiated) =
            match sdp::answer(&offer, media_a.local_addr(), rand::random::<u32>() as u64) {
                Ok(x) => x,
                Err(e) => {
                    core.sip().respond(
                        key,
                        reject(&req, 488, "Not Acceptable Here", &format!("SDP: {e}")),
                    );
                    return;
                }
            };
        media_a.set_remote(negotiated);
        core.stats.calls_started.fetch_add(1, Ordering::Relaxed);
        core.stats.tenant(&tenant.domain, |t| t.calls += 1);

        let (leg_tx, leg_rx) = mpsc::unbounded_channel();
        let tag_a = new_tag();
        let shared = Arc::new(CallShared {
            core: core.clone(),
            tenant,
            invite: req,
            invite_key: key,
            peer_a: peer,
            tag_a: tag_a.clone(),
            media_a,
            answer_sdp,
            state: Mutex::new(AState::default()),
            gone: watch::channel(false).0,
            b_gone: watch::channel(false).0,
            acked: watch::channel(false).0,
            leg_tx: leg_tx.clone(),
            started,
            call_event: Mutex::new(None),
        });
        core.register_dialog(&call_id, &tag_a, Side::A, leg_tx.clone());
        core.invites
            .lock()
            .expect("invites lock")
            .insert(key, leg_tx.clone());
        let watcher = tokio::spawn(watch_legs(shared.clone(), leg_rx).in_current_span());

        info!(number = %number, from = %from_user, "call started");
        core.live.lock().expect("live lock").insert(
            call_id.clone(),
            crate::server::LiveCall {
                call_id: call_id.clone(),
                tenant: shared.tenant.domain.clone(),
                from: from_user.clone(),
                to: number.clone(),
                start_ms: unix_ms(shared.started),
                plugin: None,
                plugin_version: None,
                answered_by: None,
            },
        );
        let call_event = plugboard_plugins::CallEvent {
            call_id: call_id.clone(),
            caller: from_user.clone(),
            callee: number.clone(),
            plugin: match &target {
                DialTarget::Plugin { name, .. } => Some(name.clone()),
                DialTarget::User(_) => None,
            },
        };
        core.events.publish(
            &core,
            &shared.tenant,
            plugboard_plugins::EventKind::CallStarted(call_event.clone()),
        );
        *shared.call_event.lock().expect("call event") = Some(call_event);
        route(&shared, target, 0).await;
        core.live.lock().expect("live lock").remove(&call_id);

        core.invites.lock().expect("invites lock").remove(&key);
        // Give a late ACK or BYE a moment to be absorbed, then forget the dialog.
        tokio::time::sleep(Duration::from_millis(200)).await;
        core.unregister_dialog(&call_id, &tag_a);
        watcher.abort();
        write_cdr(&shared, &number, &from_user);
    }
    .instrument(span)
    .await
}

/// Forwarding hops a call may take (forward rules pointing at each other).
const MAX_FORWARDS: u8 = 5;

/// Routes to a dial plan target, applying the callee's call rules.
async fn route(shared: &Arc<CallShared>, target: DialTarget, hops: u8) {
    match target {
        DialTarget::User(ext) => ring_user(shared, &ext, hops).await,
        DialTarget::Plugin { name, config } => {
            crate::plugin_call::run(shared, &name, config).await;
        }
    }
}

/// Whether `ext` of the tenant is in a call now (as caller or answered callee).
fn user_in_call(shared: &CallShared, ext: &str) -> bool {
    let own = shared.call_id();
    shared
        .core
        .live
        .lock()
        .expect("live lock")
        .values()
        .any(|c| {
            c.tenant == shared.tenant.domain
                && c.call_id != own
                && (c.from == ext || c.answered_by.as_deref() == Some(ext))
        })
}

/// Forwards to `number` of the tenant's dial plan (a call rule fired).
async fn forward(shared: &Arc<CallShared>, from_ext: &str, number: &str, why: &str, hops: u8) {
    if hops >= MAX_FORWARDS {
        warn!(%from_ext, %number, "forwarding loop: too many hops");
        shared.end_a(482, "Loop Detected", "forwarding loop").await;
        return;
    }
    let Some(target) = shared.tenant.route(number) else {
        warn!(%from_ext, %number, "forward target is not in the dial plan");
        shared
            .end_a(404, "Not Found", "forward target not found")
            .await;
        return;
    };
    info!(%from_ext, %number, rule = why, "call forwarded");
    {
        let mut st = shared.state.lock().expect("call state");
        st.forwarded = Some(format!("{why}:{number}"));
        // The RFC 5806 names, as a peer PBX's Diversion would say them.
        let reason = match why {
            "always" => "unconditional",
            "busy" => "user-busy",
            other => other,
        };
        st.redirect = Some(plugboard_plugins::Redirection {
            original: from_ext.to_string(),
            reason: reason.to_string(),
            source: "rules".into(),
        });
    }
    Box::pin(route(shared, target, hops + 1)).await
}

/// Rings a user with the user's call rules (docs/operator-guide.md).
async fn ring_user(shared: &Arc<CallShared>, ext: &str, hops: u8) {
    let rules = shared
        .tenant
        .user(ext)
        .map(|u| u.rules.clone())
        .unwrap_or_default();
    if let Some(n) = &rules.forward_always {
        return forward(shared, ext, n, "always", hops).await;
    }
    let busy = rules.dnd || (rules.busy_on_second_call && user_in_call(shared, ext));
    if busy {
        if let Some(n) = &rules.forward_busy {
            return forward(shared, ext, n, "busy", hops).await;
        }
        shared.state.lock().expect("call state").disposition = Some("busy".into());
        let why = if rules.dnd {
            "do not disturb"
        } else {
            "callee busy"
        };
        return shared.end_a(486, "Busy Here", why).await;
    }
    let ring = match rules.forward_no_answer {
        Some(_) => Duration::from_secs(rules.ring_time_s() as u64),
        None => Duration::from_secs(60),
    };
    let r = dial_user(shared, ext, ring).await;
    let disposition = format!("{r:?}").to_lowercase();
    shared.state.lock().expect("call state").disposition = Some(disposition);
    match r {
        DialResult::Answered | DialResult::CallerGone => {
            shared.end_a(200, "OK", "call ended").await
        }
        DialResult::Busy => match &rules.forward_busy {
            Some(n) => forward(shared, ext, n, "busy", hops).await,
            None => shared.end_a(486, "Busy Here", "callee busy").await,
        },
        DialResult::NoAnswer => match &rules.forward_no_answer {
            Some(n) => forward(shared, ext, n, "no-answer", hops).await,
            None => {
                shared
                    .end_a(480, "Temporarily Unavailable", "no answer")
                    .await
            }
        },
        DialResult::Failed(404) => shared.end_a(404, "Not Found", "no such user").await,
        DialResult::Failed(code) => {
            shared
                .end_a(
                    code.max(400),
                    "Temporarily Unavailable",
                    "the call could not be completed",
                )
                .await
        }
    }
}

fn write_cdr(shared: &CallShared, number: &str, from_user: &str) {
    let st = shared.state.lock().expect("call state");
    let (a_rx, a_tx) = {
        let s = shared.media_a.stats();
        (s.rx_packets, s.tx_packets)
    };
    let rec = serde_json::json!({
        "call_id": shared.call_id(),
        "tenant": shared.tenant.domain,
        "from": from_user,
        "to": number,
        "start_ms": unix_ms(shared.started),
        "answer_ms": st.answered_at.map(unix_ms),
        "end_ms": unix_ms(SystemTime::now()),
        "disposition": st.disposition,
        "plugin": st.plugin,
        "plugin_version": st.plugin_version,
        "forwarded": st.forwarded,
        "rtp_a_rx": a_rx,
        "rtp_a_tx": a_tx,
        "bridge": st.bridge_stats.map(|(ab, ba)| serde_json::json!({"a_to_b": ab, "b_to_a": ba})),
    });
    shared.core.cdr.write(&rec);
    if let Some(call) = shared.call_event.lock().expect("call event").clone() {
        let duration_ms = SystemTime::now()
            .duration_since(shared.started)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        shared.core.events.publish(
            &shared.core,
            &shared.tenant,
            plugboard_plugins::EventKind::CallEnded {
                call,
                disposition: st.disposition.clone().unwrap_or_default(),
                duration_ms,
            },
        );
    }
}

/// The watcher: answers in-dialog requests of both legs while the flow runs.
async fn watch_legs(shared: Arc<CallShared>, mut rx: mpsc::UnboundedReceiver<(Side, LegMsg)>) {
    while let Some((side, msg)) = rx.recv().await {
        match msg {
            LegMsg::Cancel => {
                let answered = shared.state.lock().expect("call state").answered;
                if !answered {
                    info!("caller cancelled");
                    let r =
                        response_with_tag(&shared.invite, 487, "Request Terminated", &shared.tag_a);
                    shared.state.lock().expect("call state").finished = true;
                    shared.core.sip().respond(shared.invite_key, r);
                    shared.gone.send_replace(true);
                    shared.media_a.close();
                }
            }
            LegMsg::Ack(_) => {
                if side == Side::A {
                    shared.acked.send_replace(true);
                }
            }
            LegMsg::Request { key, req, .. } => match (&req.method, side) {
                (Method::Bye, Side::A) => {
                    info!("caller hung up");
                    shared
                        .core
                        .sip()
                        .respond(key, Response::for_request(&req, 200, "OK"));
                    shared.state.lock().expect("call state").finished = true;
                    shared.gone.send_replace(true);
                    shared.media_a.close();
                }
                (Method::Bye, Side::B) => {
                    info!("callee hung up");
                    shared
                        .core
                        .sip()
                        .respond(key, Response::for_request(&req, 200, "OK"));
                    shared.b_gone.send_replace(true);
                }
                (Method::Invite, _) => {
                    let shared = shared.clone();
                    tokio::spawn(
                        async move { reinvite(&shared, side, key, req).await }.in_current_span(),
                    );
                }
                (Method::Options | Method::Info | Method::Update, _) => {
                    shared
                        .core
                        .sip()
                        .respond(key, Response::for_request(&req, 200, "OK"));
                }
                _ => {
                    let mut r = Response::for_request(&req, 405, "Method Not Allowed");
                    r.headers.push("Allow", crate::reply::ALLOW);
                    shared.core.sip().respond(key, r);
                }
            },
        }
    }
}

fn direction_answer(offered: &str) -> &'static str {
    match offered {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    }
}

fn with_direction(sdp: &str, dir: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 16);
    let mut seen = false;
    for line in sdp.split_inclusive('\n') {
        let l = line.trim_end();
        if matches!(l, "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive") {
            if !seen {
                out.push_str(&format!("a={dir}\r\n"));
                seen = true;
            }
        } else {
            out.push_str(line);
        }
    }
    if !seen {
        out.push_str(&format!("a={dir}\r\n"));
    }
    out
}

/// A re-INVITE (hold/resume, address change) from one leg: applied to our media
/// and passed through to the other leg when one is bridged.
async fn reinvite(shared: &Arc<CallShared>, side: Side, key: TxKey, req: Request) {
    let sip = shared.core.sip().clone();
    let body = String::from_utf8_lossy(&req.body).to_string();
    let dir = if body.trim().is_empty() {
        "sendrecv".to_string()
    } else {
        format!("{:?}", sdp::hold_state(&body)).to_lowercase()
    };
    let held = dir == "sendonly" || dir == "inactive";
    // The SDP of our session facing the sender, the one facing the other
    // leg, and the other leg's dialog (if bridged).
    let (sender_sdp, other_sdp, other) = {
        let st = shared.state.lock().expect("call state");
        let sdp_a = shared.answer_sdp.clone();
        let sdp_b = st.sdp_b.clone().unwrap_or_else(|| sdp_a.clone());
        match side {
            Side::A => (sdp_a, sdp_b, st.dialog_b.clone()),
            Side::B => (sdp_b, sdp_a, st.dialog_a.clone()),
        }
    };
    if side == Side::A && !body.trim().is_empty() {
        if let Ok(offer) = sdp::parse_offer(&body)
            && let Ok((_, n)) = sdp::answer(&offer, shared.media_a.local_addr(), 1)
        {
            shared.media_a.set_remote(n);
        }
        shared.media_a.set_hold(held);
    }
    // Pass the new direction on to the other leg.
    if let Some(mut d) = other {
        let mut r = d.request(Method::Invite);
        r.headers.push("Content-Type", "application/sdp");
        r.body = with_direction(&other_sdp, &dir).into_bytes();
        let seq = d.local_cseq;
        let peer = d.peer;
        {
            let mut st = shared.state.lock().expect("call state");
            match side {
                Side::A => st.dialog_b = Some(d.clone()),
                Side::B => st.dialog_a = Some(d.clone()),
            }
        }
        let res = sip.request_final(peer, r, Duration::from_secs(32)).await;
        if let Some(resp) = &res
            && (200..300).contains(&resp.status)
        {
            sip.send_stateless(peer, Message::Request(d.ack(seq)));
        }
    }
    let mut r = Response::for_request(&req, 200, "OK");
    let local = sip.local_addr(shared.peer_a.transport);
    r.headers
        .push("Contact", contact(shared.peer_a.transport, local));
    r.headers.push("Content-Type", "application/sdp");
    r.body = with_direction(&sender_sdp, direction_answer(&dir)).into_bytes();
    sip.respond(key, r);
    debug!(?side, %dir, "re-INVITE handled");
}

/// Rings every contact of `ext` (parallel fork), bridges the first that
/// answers with the caller, and returns when that bridge ends.
pub async fn dial_user(shared: &Arc<CallShared>, ext: &str, timeout: Duration) -> DialResult {
    let core = &shared.core;
    let tenant = &shared.tenant;
    if tenant.user(ext).is_none() {
        return DialResult::Failed(404);
    }
    let targets = core.registrar.targets(&tenant.domain, ext);
    if targets.is_empty() {
        info!(%ext, "callee not registered");
        return DialResult::NoAnswer;
    }
    let media_b = match core.media.open_session().await {
        Ok(s) => s,
        Err(e) => {
            warn!("no media port: {e}");
            return DialResult::Failed(503);
        }
    };
    let sip = core.sip().clone();
    let call_id_b = new_call_id(&tenant.domain);
    let tag_b = new_tag();
    let caller = shared.invite.headers.from_addr().unwrap_or_default();
    let mut from_b = NameAddr::new(Uri::sip(caller.uri.user.as_deref(), &tenant.domain, None));
    from_b.display = caller.display.clone();
    set_param(&mut from_b.params, "tag", Some(tag_b.clone()));
    let to_b = NameAddr::new(Uri::sip(Some(ext), &tenant.domain, None));
    let offer = sdp::make_offer(media_b.local_addr(), rand::random::<u32>() as u64, 1);
    core.register_dialog(&call_id_b, &tag_b, Side::B, shared.leg_tx.clone());
    shared.b_gone.send_replace(false);

    // One INVITE per contact; their events merged into one channel.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(usize, ClientEvent)>();
    let mut invites = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let uri: Uri = match t.contact.parse() {
            Ok(u) => u,
            Err(_) => continue,
        };
        let local = sip.local_addr(t.peer.transport);
        let mut inv = Request::new(Method::Invite, uri);
        inv.headers.push("Via", new_via(t.peer.transport, local));
        inv.headers.push("Max-Forwards", "70");
        inv.headers.push("From", from_b.to_string());
        inv.headers.push("To", to_b.to_string());
        inv.headers.push("Call-ID", call_id_b.clone());
        inv.headers.push("CSeq", "1 INVITE");
        inv.headers
            .push("Contact", contact(t.peer.transport, local));
        inv.headers.push("Allow", crate::reply::ALLOW);
        inv.headers.push("Content-Type", "application/sdp");
        inv.body = offer.clone().into_bytes();
        let mut rx = sip.request(t.peer, inv.clone());
        let ev_tx = ev_tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if ev_tx.send((i, ev)).is_err() {
                    break;
                }
            }
        });
        invites.push(Some((inv, t.peer, local)));
    }
    drop(ev_tx);
    let mut pending = invites.iter().filter(|x| x.is_some()).count();
    let mut best: u16 = 480;
    let mut gone = shared.gone.subscribe();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut winner: Option<(usize, Response)> = None;
    let mut rang = false;
    let cancel_all = |invites: &Vec<Option<(Request, Peer, std::net::SocketAddr)>>,
                      except: Option<usize>| {
        for (j, inv) in invites.iter().enumerate() {
            if Some(j) == except {
                continue;
            }
            if let Some((inv, peer, _)) = inv {
                // The CANCEL's own response is not interesting: drop the receiver.
                drop(sip.request(*peer, cancel_for(inv)));
            }
        }
    };
    let result = loop {
        if pending == 0 {
            break None;
        }
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some((i, ev)) = ev else { break None };
                match ev {
                    ClientEvent::Response(r) if r.status < 200 => {
                        if r.status >= 180 && !rang {
                            rang = true;
                            shared.ringing();
                        }
                    }
                    ClientEvent::Response(r) if r.status < 300 => {
                        if winner.is_none() {
                            winner = Some((i, r));
                            break Some(());
                        }
                    }
                    ClientEvent::Response(r) => {
                        best = merge_status(best, r.status);
                        if let Some(slot) = invites.get_mut(i) { *slot = None; }
                        pending -= 1;
                    }
                    ClientEvent::Timeout => {
                        if let Some(slot) = invites.get_mut(i) { *slot = None; }
                        pending -= 1;
                    }
                }
            }
            _ = &mut deadline => {
                cancel_all(&invites, None);
                break None;
            }
            _ = wait_true(&mut gone) => {
                cancel_all(&invites, None);
                core.unregister_dialog(&call_id_b, &tag_b);
                return DialResult::CallerGone;
            }
        }
    };
    if result.is_none() {
        core.unregister_dialog(&call_id_b, &tag_b);
        return match best {
            486 | 600 | 603 => DialResult::Busy,
            404 | 484 | 604 => DialResult::Failed(404),
            408 | 480 | 487 => DialResult::NoAnswer,
            _ if pending > 0 || best == 480 => DialResult::NoAnswer,
            s => DialResult::Failed(s),
        };
    }
    let (i, resp) = winner.expect("winner set");
    let (inv, peer, local) = invites[i].clone().expect("winning invite");
    cancel_all(&invites, Some(i));
    // Establish dialog B and ACK the 2xx.
    let to_tagged = resp.headers.to_addr().unwrap_or_default();
    let target = remote_target(&resp.headers).unwrap_or_else(|| inv.uri.clone());
    let dialog_b = Dialog {
        call_id: call_id_b.clone(),
        local: from_b.clone(),
        remote: to_tagged,
        remote_target: target,
        local_cseq: 1,
        peer,
        local_addr: local,
    };
    sip.send_stateless(peer, Message::Request(dialog_b.ack(1)));
    if let Ok(neg) = sdp::parse_answer(&String::from_utf8_lossy(&resp.body)) {
        media_b.set_remote(neg);
    }
    {
        let mut st = shared.state.lock().expect("call state");
        st.dialog_b = Some(dialog_b);
        st.sdp_b = Some(offer.clone());
    }
    if !shared.answer() {
        // The caller left between the callee's 200 and now.
        hangup_b(shared).await;
        core.unregister_dialog(&call_id_b, &tag_b);
        return DialResult::CallerGone;
    }
    info!(%ext, "callee answered; bridging");
    if let Some(live) = core
        .live
        .lock()
        .expect("live lock")
        .get_mut(shared.call_id())
    {
        live.answered_by = Some(ext.to_string());
    }
    let bridge: BridgeHandle = plugboard_media::bridge(&shared.media_a, &media_b);
    let mut b_gone = shared.b_gone.subscribe();
    tokio::select! {
        _ = wait_true(&mut gone) => {
            hangup_b(shared).await;
        }
        _ = wait_true(&mut b_gone) => {}
    }
    drop(bridge);
    // Relayed packets: what leg B sent towards the callee came from the caller.
    let a_to_b = media_b.stats().tx_packets;
    let b_to_a = shared.media_a.stats().tx_packets;
    shared.state.lock().expect("call state").bridge_stats = Some((a_to_b, b_to_a));
    media_b.close();
    shared.state.lock().expect("call state").dialog_b = None;
    core.unregister_dialog(&call_id_b, &tag_b);
    DialResult::Answered
}

/// Resolves once the flag is true (or its sender is gone).
async fn wait_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|g| *g).await;
}

/// Lower is better: a busy beats no-answer beats failure (RFC 3261 16.7 step 6, simplified).
fn merge_status(best: u16, new: u16) -> u16 {
    let rank = |s: u16| match s {
        486 | 600 | 603 => 0,
        408 | 480 | 487 => 2,
        404 | 484 | 604 => 3,
        _ => 1,
    };
    if rank(new) < rank(best) { new } else { best }
}

async fn hangup_b(shared: &Arc<CallShared>) {
    let bye = {
        let mut st = shared.state.lock().expect("call state");
        st.dialog_b
            .as_mut()
            .map(|d| (d.peer, d.request(Method::Bye)))
    };
    if let Some((peer, bye)) = bye {
        let _ = shared
            .core
            .sip()
            .request_final(peer, bye, Duration::from_secs(5))
            .await;
    }
}
