//! The RFC 3261 section 17 transaction layer, sans-IO.
//!
//! [`TransactionLayer`] owns every client and server transaction of one SIP
//! endpoint. It never touches a socket or a clock: the driver feeds it parsed
//! messages ([`TransactionLayer::handle_message`]) and the current time
//! ([`TransactionLayer::handle_timeout`]), and drains what it wants to send
//! ([`TransactionLayer::poll_transmit`]), what the transaction user (TU) must
//! handle ([`TransactionLayer::poll_event`]) and when it wants to be woken
//! ([`TransactionLayer::poll_timeout`]). This is the shape of quinn-proto and
//! str0m; it makes every timer testable in microseconds of real time.
//!
//! What the layer does on its own, so the TU need not:
//! - absorbs request retransmissions (re-sending the last response),
//!   retransmits requests (Timers A, E) and final responses (Timer G, and the
//!   2xx to INVITE per RFC 3261 13.3.1.4) over UDP;
//! - answers a new INVITE with `100 Trying` at once;
//! - answers CANCEL (200 if it matches a transaction, 481 otherwise) and tells
//!   the TU to end the INVITE with 487;
//! - sends the ACK for a 3xx-6xx response to a client INVITE (17.1.1.3);
//! - stamps `received`/`rport` on the top Via of incoming requests (RFC 3581);
//! - keeps INVITE transactions in the RFC 6026 "Accepted" state so that
//!   retransmitted 2xx responses reach the TU (to re-ACK) and retransmitted
//!   INVITEs are absorbed.
//!
//! Transactions live in a `HashMap` keyed by [`TxKey`], with indexes from the
//! matching rules of 17.1.3 and 17.2.3 (plus the RFC 2543 fallback) to keys.
//! Timers sit in a binary heap with lazy deletion: a popped entry fires only
//! if the transaction still holds that exact deadline. Nothing scans all
//! transactions except [`TransactionLayer::handle_transport_error`].
//!
//! Over TCP (reliable transports) no retransmission timer runs and Timers
//! I, J, K and D are zero, as RFC 3261 17 specifies.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::message::{Message, Method, Request, Response, Via};
use crate::util::{MAGIC_COOKIE, new_tag};

/// The transport a message came on or goes out by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// True when the transport itself retransmits (TCP): no SIP-level
    /// retransmission timers then, and the "linger" timers are zero.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
}

/// The far end of a message: transport and socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// Identifies one transaction (client or server) of a [`TransactionLayer`].
/// Keys are never reused by one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey(u64);

/// The RFC 3261 timer base values (section 17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate; retransmissions start at T1, and B, F, H, J, L, M are 64*T1.
    pub t1: Duration,
    /// Cap of the retransmission interval of non-INVITE requests and of responses.
    pub t2: Duration,
    /// How long a message may stay in the network (Timers I and K).
    pub t4: Duration,
}

impl Default for Timers {
    /// 500 ms, 4 s, 5 s.
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J, L, M, and D (32 s with the default T1).
    fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Bytes to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Vec<u8>,
}

/// What the transaction user must handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new request (not a retransmission, not ACK, not CANCEL). Answer it
    /// with [`TransactionLayer::respond`] and this key. The top Via already
    /// carries `received`/`rport` (RFC 3581).
    Request {
        key: TxKey,
        request: Request,
        peer: Peer,
    },
    /// An ACK that matched no INVITE server transaction in Completed state:
    /// the ACK for a 2xx (the layer stops retransmitting that 2xx), or a
    /// stray ACK.
    Ack { request: Request, peer: Peer },
    /// A CANCEL matching a pending INVITE server transaction. The layer has
    /// already answered the CANCEL with 200; the TU must answer the INVITE
    /// (key = the INVITE's) with 487. A CANCEL matching nothing is answered
    /// 481 by the layer and not reported.
    Cancel { invite: TxKey, request: Request },
    /// A response for a client transaction (provisional ones too;
    /// retransmissions of final responses are absorbed, except 2xx to INVITE
    /// which are reported again so the TU can re-ACK).
    Response { key: TxKey, response: Response },
    /// A client transaction got no final response (Timer B / Timer F), its
    /// INVITE got no final response within 64*T1 after the CANCEL was
    /// answered, or its transport failed.
    Timeout { key: TxKey },
}

/// Server transaction matching key (RFC 3261 17.2.3, with the RFC 2543
/// fallback of 17.2.3's last paragraphs for branches without the cookie).
/// `method` is INVITE for an ACK looking for its INVITE, and for a CANCEL
/// looking for the INVITE it cancels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKey {
    Rfc3261 {
        branch: String,
        host: String,
        port: Option<u16>,
        method: Method,
    },
    Rfc2543 {
        uri: String,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        via: String,
        method: Method,
    },
}

/// Where a transaction is indexed, so it can be unindexed on removal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexKey {
    Server(ServerKey),
    /// Top Via branch and CSeq method (17.1.3).
    Client(String, Method),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    InviteServer,
    NonInviteServer,
    InviteClient,
    NonInviteClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client INVITE before any response.
    Calling,
    /// Non-INVITE (client or server) before any response.
    Trying,
    Proceeding,
    Completed,
    /// INVITE server: the ACK for the 3xx-6xx arrived.
    Confirmed,
    /// INVITE (client or server) after a 2xx (RFC 6026).
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// Timers A, E, G and the 2xx retransmission.
    Retransmit,
    /// Every timer that ends a state: B, D, F, H, I, J, K, L, M.
    End,
}

#[derive(Debug)]
struct Tx {
    role: Role,
    state: State,
    peer: Peer,
    index: IndexKey,
    /// Server: the last response sent. Client: the request (while it may
    /// be retransmitted).
    bytes: Option<Vec<u8>>,
    /// Client INVITE: the request, to build the ACK for 3xx-6xx.
    invite: Option<Box<Request>>,
    /// Client INVITE in Completed: the ACK to re-send.
    ack: Option<Vec<u8>>,
    /// The current retransmission interval.
    interval: Duration,
    retransmit_at: Option<Instant>,
    end_at: Option<Instant>,
    /// Server INVITE after a 2xx: its entry in `accepted`.
    accepted: Option<String>,
    /// Server INVITE: the To tag of the last response with one.
    to_tag: Option<String>,
}

impl Tx {
    fn new(role: Role, state: State, peer: Peer, index: IndexKey, t1: Duration) -> Tx {
        Tx {
            role,
            state,
            peer,
            index,
            bytes: None,
            invite: None,
            ack: None,
            interval: t1,
            retransmit_at: None,
            end_at: None,
            accepted: None,
            to_tag: None,
        }
    }

    fn reliable(&self) -> bool {
        self.peer.transport.is_reliable()
    }
}

/// The transaction layer of one endpoint. See the module docs.
#[derive(Debug)]
pub struct TransactionLayer {
    timers: Timers,
    next_id: u64,
    txs: HashMap<TxKey, Tx>,
    server_index: HashMap<ServerKey, TxKey>,
    client_index: HashMap<(String, Method), TxKey>,
    /// Server INVITEs answered 2xx, by "CSeq-number Call-ID", for the ACK.
    accepted: HashMap<String, TxKey>,
    heap: BinaryHeap<Reverse<(Instant, TxKey, TimerKind)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

/// The key of `accepted`.
fn accepted_key(call_id: &str, seq: u32) -> String {
    format!("{seq} {call_id}")
}

/// True for a branch that follows RFC 3261 (cookie and something after it).
fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE)
}

/// The server key of `req` (whose top Via is `via` and CSeq number `seq`),
/// looked up as `method`. `None` when the request lacks what the RFC 2543
/// fallback needs (a Call-ID).
fn server_key(req: &Request, via: &Via, seq: u32, method: Method) -> Option<ServerKey> {
    match via.branch() {
        Some(b) if is_rfc3261_branch(b) => Some(ServerKey::Rfc3261 {
            branch: b.to_string(),
            host: via.host.to_ascii_lowercase(),
            port: via.port,
            method,
        }),
        _ => Some(ServerKey::Rfc2543 {
            uri: req.uri.to_string(),
            from_tag: req
                .headers
                .from_addr()
                .ok()
                .and_then(|f| f.tag().map(str::to_string)),
            call_id: req.headers.call_id()?.to_string(),
            cseq: seq,
            via: via.to_string(),
            method,
        }),
    }
}

/// RFC 3581 / RFC 3261 18.2.1: records the source address in the top Via.
/// `received` is added when the sent-by host is not the source IP, or when
/// the client asked for `rport` (RFC 3581 section 4 requires it then);
/// an empty `rport` is filled with the source port.
fn stamp_via(req: &mut Request, top: &Via, peer: Peer) {
    let src = peer.addr.ip().to_canonical();
    let host = top.host.trim_start_matches('[').trim_end_matches(']');
    let host_differs = host
        .parse::<IpAddr>()
        .map_or(true, |h| h.to_canonical() != src);
    let rport_empty = matches!(top.param("rport"), Some(None));
    if !host_differs && !rport_empty {
        return;
    }
    let Ok(mut vias) = req.headers.vias() else {
        return;
    };
    let Some(first) = vias.first_mut() else {
        return;
    };
    first.set_param("received", Some(src.to_string()));
    if rport_empty {
        first.set_param("rport", Some(peer.addr.port().to_string()));
    }
    req.headers.remove("Via");
    for v in vias.iter().rev() {
        req.headers.push_front("Via", v.to_string());
    }
}

/// Adds `;tag=` to the To header of `resp` when it has none.
fn ensure_to_tag(resp: &mut Response, tag: Option<String>) -> Option<String> {
    if let Ok(to) = resp.headers.to_addr()
        && let Some(t) = to.tag()
    {
        return Some(t.to_string());
    }
    let raw = resp.headers.get("To")?.to_string();
    let tag = tag.unwrap_or_else(new_tag);
    resp.headers.set("To", format!("{raw};tag={tag}"));
    Some(tag)
}

/// The To tag of a response, if any.
fn to_tag_of(resp: &Response) -> Option<String> {
    resp.headers
        .to_addr()
        .ok()
        .and_then(|t| t.tag().map(str::to_string))
}

/// The CSeq number of a request, from the parser or, failing that, from
/// the first token of the raw header.
fn cseq_number(req: &Request) -> u32 {
    match req.headers.cseq() {
        Ok(c) => c.seq,
        Err(_) => req
            .headers
            .get("CSeq")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// A request that copies the headers RFC 3261 9.1 and 17.1.1.3 name from
/// `orig`: Request-URI, top Via, Route, From, Call-ID, CSeq number (with
/// `method`), Max-Forwards 70. `to` is the To header value.
fn derived_request(orig: &Request, method: Method, to: Option<&str>) -> Request {
    let mut r = Request::new(method.clone(), orig.uri.clone());
    match orig.headers.top_via() {
        Ok(v) => r.headers.push("Via", v.to_string()),
        Err(_) => {
            if let Some(v) = orig.headers.get("Via") {
                r.headers.push("Via", v);
            }
        }
    }
    for route in orig.headers.get_all("Route") {
        r.headers.push("Route", route);
    }
    r.headers.push("Max-Forwards", "70");
    if let Some(f) = orig.headers.get("From") {
        r.headers.push("From", f);
    }
    if let Some(t) = to {
        r.headers.push("To", t);
    }
    if let Some(c) = orig.headers.get("Call-ID") {
        r.headers.push("Call-ID", c);
    }
    r.headers
        .push("CSeq", format!("{} {}", cseq_number(orig), method));
    r
}

/// Builds the CANCEL for a client INVITE (RFC 3261 9.1): same Request-URI,
/// Call-ID, From, To and CSeq number, the INVITE's top Via only (same
/// branch, so the server matches it to the INVITE), its Route set.
/// Send it with [`TransactionLayer::send_request`], and only after a
/// provisional response arrived.
pub fn cancel_for(invite: &Request) -> Request {
    derived_request(invite, Method::Cancel, invite.headers.get("To"))
}

/// The ACK for a 3xx-6xx response to a client INVITE (RFC 3261 17.1.1.3).
fn ack_for(invite: &Request, resp: &Response) -> Request {
    derived_request(invite, Method::Ack, resp.headers.get("To"))
}

impl TransactionLayer {
    /// An empty layer with the given timer values.
    pub fn new(timers: Timers) -> TransactionLayer {
        TransactionLayer {
            timers,
            next_id: 0,
            txs: HashMap::new(),
            server_index: HashMap::new(),
            client_index: HashMap::new(),
            accepted: HashMap::new(),
            heap: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Number of live transactions (for metrics/tests).
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    fn new_key(&mut self) -> TxKey {
        self.next_id += 1;
        TxKey(self.next_id)
    }

    fn transmit(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, bytes });
    }

    /// Sets a timer of `key` (which must exist) and queues it.
    fn arm(&mut self, key: TxKey, kind: TimerKind, at: Instant) {
        if let Some(tx) = self.txs.get_mut(&key) {
            match kind {
                TimerKind::Retransmit => tx.retransmit_at = Some(at),
                TimerKind::End => tx.end_at = Some(at),
            }
            self.heap.push(Reverse((at, key, kind)));
        }
    }

    /// Drops a transaction and its index entries.
    fn remove(&mut self, key: TxKey) {
        let Some(tx) = self.txs.remove(&key) else {
            return;
        };
        match tx.index {
            IndexKey::Server(k) => {
                if self.server_index.get(&k) == Some(&key) {
                    self.server_index.remove(&k);
                }
            }
            IndexKey::Client(b, m) => {
                let k = (b, m);
                if self.client_index.get(&k) == Some(&key) {
                    self.client_index.remove(&k);
                }
            }
        }
        if let Some(a) = tx.accepted
            && self.accepted.get(&a) == Some(&key)
        {
            self.accepted.remove(&a);
        }
    }

    /// Pops heap entries that no longer match a live timer, so that
    /// `poll_timeout` reports a real deadline.
    fn prune(&mut self) {
        while let Some(&Reverse((at, key, kind))) = self.heap.peek() {
            let live = self.txs.get(&key).is_some_and(|tx| match kind {
                TimerKind::Retransmit => tx.retransmit_at == Some(at),
                TimerKind::End => tx.end_at == Some(at),
            });
            if live {
                break;
            }
            self.heap.pop();
        }
    }

    /// Feed one parsed message received from `peer`. Then drain
    /// `poll_transmit` and `poll_event`, and re-read `poll_timeout`.
    ///
    /// Messages without a parsable top Via or CSeq are dropped (validation
    /// with a 400 answer belongs before this layer).
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: Message) {
        match msg {
            Message::Request(r) => self.on_request(now, peer, r),
            Message::Response(r) => self.on_response(now, r),
        }
        self.prune();
    }

    fn on_request(&mut self, now: Instant, peer: Peer, mut req: Request) {
        let Ok(via) = req.headers.top_via() else {
            return;
        };
        let Ok(cseq) = req.headers.cseq() else {
            return;
        };
        stamp_via(&mut req, &via, peer);
        match req.method {
            Method::Ack => self.on_ack(now, peer, req, &via, cseq.seq),
            Method::Cancel => self.on_cancel(now, peer, req, &via, cseq.seq),
            _ => {
                let method = req.method.clone();
                let Some(skey) = server_key(&req, &via, cseq.seq, method.clone()) else {
                    return;
                };
                if let Some(&k) = self.server_index.get(&skey) {
                    self.retransmission(k);
                    return;
                }
                let invite = method == Method::Invite;
                let key = self.new_server_tx(now, peer, skey, invite);
                if invite {
                    let trying = Response::for_request(&req, 100, "Trying");
                    self.respond_inner(now, key, trying);
                }
                self.events.push_back(Event::Request {
                    key,
                    request: req,
                    peer,
                });
            }
        }
    }

    fn new_server_tx(&mut self, now: Instant, peer: Peer, skey: ServerKey, invite: bool) -> TxKey {
        let key = self.new_key();
        let (role, state) = if invite {
            (Role::InviteServer, State::Proceeding)
        } else {
            (Role::NonInviteServer, State::Trying)
        };
        let tx = Tx::new(
            role,
            state,
            peer,
            IndexKey::Server(skey.clone()),
            self.timers.t1,
        );
        self.txs.insert(key, tx);
        self.server_index.insert(skey, key);
        if !invite {
            // The client gives up after Timer F (64*T1); so do we, in case
            // the TU never answers.
            self.arm(key, TimerKind::End, now + self.timers.t64());
        }
        key
    }

    /// A request retransmission for server transaction `key`.
    fn retransmission(&mut self, key: TxKey) {
        let Some(tx) = self.txs.get(&key) else {
            return;
        };
        if tx.state == State::Confirmed {
            return;
        }
        if let Some(b) = &tx.bytes {
            let (peer, bytes) = (tx.peer, b.clone());
            self.transmit(peer, bytes);
        }
    }

    fn on_ack(&mut self, now: Instant, peer: Peer, req: Request, via: &Via, seq: u32) {
        let found = server_key(&req, via, seq, Method::Invite)
            .and_then(|k| self.server_index.get(&k).copied());
        if let Some(key) = found
            && let Some(tx) = self.txs.get_mut(&key)
        {
            match tx.state {
                State::Completed => {
                    tx.state = State::Confirmed;
                    tx.retransmit_at = None;
                    tx.bytes = None;
                    if tx.reliable() {
                        self.remove(key);
                    } else {
                        let at = now + self.timers.t4;
                        self.arm(key, TimerKind::End, at);
                    }
                    return;
                }
                State::Confirmed => return,
                _ => {}
            }
        }
        if let Some(call_id) = req.headers.call_id()
            && let Some(&key) = self.accepted.get(&accepted_key(call_id, seq))
            && let Some(tx) = self.txs.get_mut(&key)
        {
            // Stop retransmitting the 2xx; keep the transaction until
            // Timer L to absorb late INVITE retransmissions.
            tx.retransmit_at = None;
        }
        self.events.push_back(Event::Ack { request: req, peer });
    }

    fn on_cancel(&mut self, now: Instant, peer: Peer, req: Request, via: &Via, seq: u32) {
        let Some(ckey) = server_key(&req, via, seq, Method::Cancel) else {
            return;
        };
        if let Some(&k) = self.server_index.get(&ckey) {
            self.retransmission(k);
            return;
        }
        let invite = server_key(&req, via, seq, Method::Invite)
            .and_then(|k| self.server_index.get(&k).copied())
            .and_then(|k| self.txs.get(&k).map(|tx| (k, tx)));
        let (status, reason, tag, pending) = match invite {
            Some((k, tx)) => (
                200,
                "OK",
                tx.to_tag.clone(),
                (tx.state == State::Proceeding).then_some(k),
            ),
            None => (481, "Call/Transaction Does Not Exist", None, None),
        };
        let ck = self.new_server_tx(now, peer, ckey, false);
        let mut resp = Response::for_request(&req, status, reason);
        ensure_to_tag(&mut resp, tag);
        self.respond_inner(now, ck, resp);
        if let Some(invite) = pending {
            self.events.push_back(Event::Cancel {
                invite,
                request: req,
            });
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let Ok(via) = resp.headers.top_via() else {
            return;
        };
        let Some(branch) = via.branch() else {
            return;
        };
        let Ok(cseq) = resp.headers.cseq() else {
            return;
        };
        let Some(&key) = self
            .client_index
            .get(&(branch.to_string(), cseq.method.clone()))
        else {
            return;
        };
        let t64 = self.timers.t64();
        let t4 = self.timers.t4;
        let Some(tx) = self.txs.get_mut(&key) else {
            return;
        };
        let status = resp.status;
        let reliable = tx.reliable();
        match (tx.role, tx.state) {
            (Role::InviteClient, State::Calling | State::Proceeding) => {
                tx.retransmit_at = None;
                if status < 200 {
                    if tx.state == State::Calling {
                        // Timer B only runs in Calling.
                        tx.end_at = None;
                        tx.state = State::Proceeding;
                    }
                    tx.bytes = None;
                } else if status < 300 {
                    tx.state = State::Accepted;
                    tx.bytes = None;
                    self.arm(key, TimerKind::End, now + t64);
                } else {
                    tx.state = State::Completed;
                    tx.bytes = None;
                    let ack = tx
                        .invite
                        .as_deref()
                        .map(|inv| ack_for(inv, &resp).to_bytes());
                    let peer = tx.peer;
                    if let Some(ack) = ack {
                        if reliable {
                            self.remove(key);
                        } else {
                            tx.ack = Some(ack.clone());
                            self.arm(key, TimerKind::End, now + t64);
                        }
                        self.transmit(peer, ack);
                    }
                }
                self.events.push_back(Event::Response {
                    key,
                    response: resp,
                });
            }
            (Role::InviteClient, State::Accepted) if (200..300).contains(&status) => {
                self.events.push_back(Event::Response {
                    key,
                    response: resp,
                });
            }
            (Role::InviteClient, State::Completed) => {
                if status >= 300
                    && let Some(ack) = tx.ack.clone()
                {
                    let peer = tx.peer;
                    self.transmit(peer, ack);
                }
            }
            (Role::NonInviteClient, State::Trying | State::Proceeding) => {
                if status < 200 {
                    tx.state = State::Proceeding;
                    // Timer E continues at T2 intervals in Proceeding.
                    tx.interval = self.timers.t2;
                } else {
                    tx.state = State::Completed;
                    tx.retransmit_at = None;
                    tx.bytes = None;
                    if reliable {
                        self.remove(key);
                    } else {
                        self.arm(key, TimerKind::End, now + t4);
                    }
                    if cseq.method == Method::Cancel {
                        self.cancel_answered(now, branch);
                    }
                }
                self.events.push_back(Event::Response {
                    key,
                    response: resp,
                });
            }
            _ => {}
        }
    }

    /// RFC 3261 9.1: once the CANCEL is answered, the INVITE gets 64*T1 to
    /// see its final response before the client transaction gives up.
    fn cancel_answered(&mut self, now: Instant, branch: &str) {
        if let Some(&k) = self.client_index.get(&(branch.to_string(), Method::Invite))
            && self
                .txs
                .get(&k)
                .is_some_and(|tx| matches!(tx.state, State::Calling | State::Proceeding))
        {
            let at = now + self.timers.t64();
            self.arm(k, TimerKind::End, at);
        }
    }

    /// Answer a server transaction.
    ///
    /// - 1xx: sent once (and re-sent on request retransmission).
    /// - INVITE 3xx-6xx: retransmitted (Timer G, UDP only) until the ACK
    ///   (absorbed) or Timer H.
    /// - INVITE 2xx: retransmitted (T1 doubling to T2, UDP only) until an ACK
    ///   with the same Call-ID and CSeq number arrives (reported as
    ///   [`Event::Ack`]) or 64*T1 passes.
    /// - Non-INVITE final: sent, and re-sent on each request retransmission
    ///   until Timer J.
    ///
    /// Responses for unknown or finished transactions, and responses that
    /// the state does not allow (a second final), are dropped. An INVITE
    /// server transaction waits for its final response as long as the TU
    /// likes (ringing has no limit); a non-INVITE one is dropped unanswered
    /// after 64*T1, when the client has given up anyway.
    pub fn respond(&mut self, now: Instant, key: TxKey, response: Response) {
        self.respond_inner(now, key, response);
        self.prune();
    }

    fn respond_inner(&mut self, now: Instant, key: TxKey, response: Response) {
        let t1 = self.timers.t1;
        let t64 = self.timers.t64();
        let Some(tx) = self.txs.get_mut(&key) else {
            return;
        };
        let status = response.status;
        let reliable = tx.reliable();
        let allowed = match (tx.role, tx.state) {
            (Role::InviteServer, State::Proceeding) => true,
            (Role::InviteServer, State::Accepted) => (200..300).contains(&status),
            (Role::NonInviteServer, State::Trying | State::Proceeding) => true,
            _ => false,
        };
        if !allowed {
            return;
        }
        let bytes = response.to_bytes();
        let peer = tx.peer;
        tx.bytes = Some(bytes.clone());
        if let Some(tag) = to_tag_of(&response) {
            tx.to_tag = Some(tag);
        }
        match tx.role {
            Role::InviteServer if status >= 200 => {
                let first_final = tx.state == State::Proceeding;
                tx.interval = t1;
                if status < 300 {
                    tx.state = State::Accepted;
                    if first_final
                        && let (Some(call_id), Ok(cseq)) =
                            (response.headers.call_id(), response.headers.cseq())
                    {
                        let ak = accepted_key(call_id, cseq.seq);
                        tx.accepted = Some(ak.clone());
                        self.accepted.insert(ak, key);
                    }
                } else {
                    tx.state = State::Completed;
                }
                if !reliable {
                    self.arm(key, TimerKind::Retransmit, now + t1);
                }
                if first_final {
                    // Timer L (2xx) or Timer H (3xx-6xx).
                    self.arm(key, TimerKind::End, now + t64);
                }
            }
            Role::NonInviteServer => {
                if status < 200 {
                    tx.state = State::Proceeding;
                } else {
                    tx.state = State::Completed;
                    if reliable {
                        self.remove(key);
                    } else {
                        // Timer J.
                        self.arm(key, TimerKind::End, now + t64);
                    }
                }
            }
            _ => {}
        }
        self.transmit(peer, bytes);
    }

    /// Start a client transaction and send `request` to `peer`. The request
    /// must carry its top Via with a fresh branch (see
    /// [`crate::util::new_branch`]); responses are matched by that branch and
    /// the CSeq method.
    ///
    /// Over UDP the request is retransmitted (Timer A for INVITE, Timer E
    /// otherwise); without a final response, [`Event::Timeout`] comes after
    /// 64*T1 (Timers B and F). The ACK for a 3xx-6xx response to an INVITE
    /// is built and sent by the layer.
    ///
    /// An ACK given here is sent once and gets a key but no transaction (the
    /// ACK for a 2xx is the TU's business, RFC 3261 17.1.1.3).
    pub fn send_request(&mut self, now: Instant, peer: Peer, request: Request) -> TxKey {
        let key = self.new_key();
        let bytes = request.to_bytes();
        if request.method == Method::Ack {
            self.transmit(peer, bytes);
            return key;
        }
        let branch = request
            .headers
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let invite = request.method == Method::Invite;
        let ikey = (branch, request.method.clone());
        let (role, state) = if invite {
            (Role::InviteClient, State::Calling)
        } else {
            (Role::NonInviteClient, State::Trying)
        };
        let mut tx = Tx::new(
            role,
            state,
            peer,
            IndexKey::Client(ikey.0.clone(), ikey.1.clone()),
            self.timers.t1,
        );
        let reliable = tx.reliable();
        if !reliable {
            tx.bytes = Some(bytes.clone());
        }
        if invite {
            tx.invite = Some(Box::new(request));
        }
        self.txs.insert(key, tx);
        self.client_index.insert(ikey, key);
        if !reliable {
            self.arm(key, TimerKind::Retransmit, now + self.timers.t1);
        }
        self.arm(key, TimerKind::End, now + self.timers.t64());
        self.transmit(peer, bytes);
        self.prune();
        key
    }

    /// Send outside any transaction (ACK for 2xx, stateless responses).
    pub fn send_stateless(&mut self, peer: Peer, msg: Message) {
        self.transmit(peer, msg.to_bytes());
    }

    /// The transport to `peer` failed (a TCP connection closed or could not
    /// be opened): client transactions towards it end with
    /// [`Event::Timeout`], server transactions are dropped. This is the one
    /// operation that scans every transaction; it is rare.
    pub fn handle_transport_error(&mut self, peer: Peer) {
        let mut dead: Vec<(TxKey, bool)> = self
            .txs
            .iter()
            .filter(|(_, tx)| tx.peer == peer)
            .map(|(k, tx)| {
                let pending = matches!(
                    (tx.role, tx.state),
                    (Role::InviteClient, State::Calling | State::Proceeding)
                        | (Role::NonInviteClient, State::Trying | State::Proceeding)
                );
                (*k, pending)
            })
            .collect();
        dead.sort();
        for (key, pending) in dead {
            self.remove(key);
            if pending {
                self.events.push_back(Event::Timeout { key });
            }
        }
        self.prune();
    }

    /// The next thing the TU must handle, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next datagram / stream write to perform, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] should be called next
    /// (`None`: no timer runs). Re-read it after every call that takes
    /// `&mut self`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Fire every timer due at `now`. Then drain `poll_transmit` and
    /// `poll_event`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, key, kind))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(tx) = self.txs.get_mut(&key) else {
                continue;
            };
            match kind {
                TimerKind::Retransmit if tx.retransmit_at == Some(at) => {
                    tx.retransmit_at = None;
                    self.fire_retransmit(now, key);
                }
                TimerKind::End if tx.end_at == Some(at) => {
                    tx.end_at = None;
                    self.fire_end(key);
                }
                _ => {}
            }
        }
        self.prune();
    }

    fn fire_retransmit(&mut self, now: Instant, key: TxKey) {
        let t2 = self.timers.t2;
        let Some(tx) = self.txs.get_mut(&key) else {
            return;
        };
        let next = match (tx.role, tx.state) {
            // Timer A: doubles without cap (Timer B ends it).
            (Role::InviteClient, State::Calling) => tx.interval * 2,
            // Timer E in Trying, Timer G, and the 2xx retransmission.
            (Role::NonInviteClient, State::Trying)
            | (Role::InviteServer, State::Completed | State::Accepted) => (tx.interval * 2).min(t2),
            // Timer E in Proceeding.
            (Role::NonInviteClient, State::Proceeding) => t2,
            _ => return,
        };
        let Some(bytes) = tx.bytes.clone() else {
            return;
        };
        tx.interval = next;
        let peer = tx.peer;
        self.transmit(peer, bytes);
        self.arm(key, TimerKind::Retransmit, now + next);
    }

    fn fire_end(&mut self, key: TxKey) {
        let Some(tx) = self.txs.get(&key) else {
            return;
        };
        let timeout = matches!(
            (tx.role, tx.state),
            (Role::InviteClient, State::Calling | State::Proceeding)
                | (Role::NonInviteClient, State::Trying | State::Proceeding)
        );
        self.remove(key);
        if timeout {
            self.events.push_back(Event::Timeout { key });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_message;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const MS: Duration = Duration::from_millis(1);

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
    }

    fn udp(ip: [u8; 4], port: u16) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: addr(ip, port),
        }
    }

    fn tcp(ip: [u8; 4], port: u16) -> Peer {
        Peer {
            transport: Transport::Tcp,
            addr: addr(ip, port),
        }
    }

    /// The UAC at 10.0.0.1:5060.
    fn alice() -> Peer {
        udp([10, 0, 0, 1], 5060)
    }

    /// The UAS at 10.0.0.2:5060.
    fn bob() -> Peer {
        udp([10, 0, 0, 2], 5060)
    }

    /// A request as a UAC at 10.0.0.1:5060 would send it.
    fn request(method: Method, branch: &str, call_id: &str, seq: u32) -> Request {
        let mut r = Request::new(method.clone(), Uri::sip(Some("bob"), "10.0.0.2", None));
        let b = if branch.is_empty() {
            String::new()
        } else {
            format!(";branch={branch}")
        };
        r.headers
            .push("Via", format!("SIP/2.0/UDP 10.0.0.1:5060{b}"));
        r.headers.push("Max-Forwards", "70");
        r.headers.push("From", "<sip:alice@a.example>;tag=a1");
        r.headers.push("To", "<sip:bob@b.example>");
        r.headers.push("Call-ID", call_id);
        r.headers.push("CSeq", format!("{seq} {method}"));
        r
    }

    use crate::message::Uri;

    /// Wire round trip: what the peer would parse.
    fn wire(t: &Transmit) -> Message {
        parse_message(&t.bytes).expect("the layer sends parsable messages")
    }

    fn transmits(l: &mut TransactionLayer) -> Vec<Transmit> {
        std::iter::from_fn(|| l.poll_transmit()).collect()
    }

    fn events(l: &mut TransactionLayer) -> Vec<Event> {
        std::iter::from_fn(|| l.poll_event()).collect()
    }

    fn status_of(m: &Message) -> u16 {
        match m {
            Message::Response(r) => r.status,
            Message::Request(r) => panic!("expected a response, got {}", r.method),
        }
    }

    fn response_to(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
        let mut r = Response::for_request(req, status, "X");
        if let Some(t) = to_tag {
            let to = r.headers.get("To").unwrap_or_default().to_string();
            r.headers.set("To", format!("{to};tag={t}"));
        }
        r
    }

    /// Things paired with their offset from the test's start.
    type Timed<T> = Vec<(Duration, T)>;

    /// Runs every timer up to `end`, returning (offset from t0, transmit)
    /// pairs and the events, in order.
    fn run_until(
        l: &mut TransactionLayer,
        t0: Instant,
        end: Instant,
    ) -> (Timed<Transmit>, Timed<Event>) {
        let mut tx = Vec::new();
        let mut ev = Vec::new();
        while let Some(at) = l.poll_timeout() {
            if at > end {
                break;
            }
            l.handle_timeout(at);
            tx.extend(transmits(l).into_iter().map(|t| (at - t0, t)));
            ev.extend(events(l).into_iter().map(|e| (at - t0, e)));
        }
        (tx, ev)
    }

    fn secs(v: &[f64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    // ---------------------------------------------------------------- client

    #[test]
    fn timer_e_retransmits_non_invite_until_timer_f() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let key = l.send_request(t0, bob(), request(Method::Options, "z9hG4bKe1", "c1", 1));
        assert_eq!(transmits(&mut l).len(), 1);
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        let times: Vec<Duration> = tx.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            times,
            secs(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        );
        assert_eq!(ev, vec![(Duration::from_secs(32), Event::Timeout { key })]);
        assert!(l.is_empty());
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn timer_a_doubles_until_timer_b() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let key = l.send_request(t0, bob(), request(Method::Invite, "z9hG4bKa1", "c1", 1));
        assert_eq!(transmits(&mut l).len(), 1);
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        let times: Vec<Duration> = tx.iter().map(|(d, _)| *d).collect();
        assert_eq!(times, secs(&[0.5, 1.5, 3.5, 7.5, 15.5, 31.5]));
        assert!(tx.iter().all(|(_, t)| t.peer == bob()));
        assert_eq!(ev, vec![(Duration::from_secs(32), Event::Timeout { key })]);
        assert!(l.is_empty());
    }

    #[test]
    fn timers_scale_with_t1() {
        let timers = Timers {
            t1: Duration::from_millis(10),
            t2: Duration::from_millis(80),
            t4: Duration::from_millis(100),
        };
        let mut l = TransactionLayer::new(timers);
        let t0 = Instant::now();
        let key = l.send_request(t0, bob(), request(Method::Options, "z9hG4bKe1", "c1", 1));
        assert_eq!(transmits(&mut l).len(), 1);
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        // 10, 30, 70, 150, 230, ..., 630 ms.
        assert_eq!(tx.len(), 10);
        assert_eq!(ev, vec![(640 * MS, Event::Timeout { key })]);
    }

    #[test]
    fn tcp_client_has_no_retransmissions_but_times_out() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let peer = tcp([10, 0, 0, 2], 5060);
        let key = l.send_request(t0, peer, request(Method::Invite, "z9hG4bKt1", "c1", 1));
        assert_eq!(transmits(&mut l).len(), 1);
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(tx.is_empty());
        assert_eq!(ev, vec![(Duration::from_secs(32), Event::Timeout { key })]);
    }

    #[test]
    fn provisional_response_stops_timer_a_and_timer_b() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let inv = request(Method::Invite, "z9hG4bKp1", "c1", 1);
        let key = l.send_request(t0, bob(), inv.clone());
        transmits(&mut l);
        l.handle_message(
            t0 + 200 * MS,
            bob(),
            Message::Response(response_to(&inv, 180, Some("b1"))),
        );
        match events(&mut l).as_slice() {
            [Event::Response { key: k, response }] => {
                assert_eq!(*k, key);
                assert_eq!(response.status, 180);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.poll_timeout(), None);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn non_invite_proceeding_retransmits_at_t2() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let req = request(Method::Register, "z9hG4bKr1", "c1", 1);
        let key = l.send_request(t0, bob(), req.clone());
        transmits(&mut l);
        l.handle_message(
            t0 + 100 * MS,
            bob(),
            Message::Response(response_to(&req, 100, None)),
        );
        assert_eq!(events(&mut l).len(), 1);
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        let times: Vec<Duration> = tx.iter().map(|(d, _)| *d).collect();
        assert_eq!(times, secs(&[0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]));
        assert_eq!(ev, vec![(Duration::from_secs(32), Event::Timeout { key })]);
    }

    #[test]
    fn final_response_completes_non_invite_and_timer_k_absorbs_retransmissions() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let req = request(Method::Options, "z9hG4bKk1", "c1", 1);
        let key = l.send_request(t0, bob(), req.clone());
        transmits(&mut l);
        let ok = Message::Response(response_to(&req, 200, Some("b1")));
        l.handle_message(t0 + 10 * MS, bob(), ok.clone());
        assert!(matches!(
            events(&mut l).as_slice(),
            [Event::Response { key: k, response }] if *k == key && response.status == 200
        ));
        l.handle_message(t0 + 20 * MS, bob(), ok.clone());
        assert!(events(&mut l).is_empty(), "retransmitted final absorbed");
        assert_eq!(
            l.poll_timeout(),
            Some(t0 + 10 * MS + Duration::from_secs(5))
        );
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(tx.is_empty() && ev.is_empty());
        assert!(l.is_empty());
        // After Timer K, the response matches nothing and is dropped.
        l.handle_message(t0 + Duration::from_secs(6), bob(), ok);
        assert!(events(&mut l).is_empty());
    }

    #[test]
    fn tcp_client_non_invite_forgets_after_final_timer_k_zero() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let peer = tcp([10, 0, 0, 2], 5060);
        let req = request(Method::Options, "z9hG4bKk2", "c1", 1);
        l.send_request(t0, peer, req.clone());
        l.handle_message(t0, peer, Message::Response(response_to(&req, 200, None)));
        assert_eq!(events(&mut l).len(), 1);
        assert!(l.is_empty());
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn client_invite_error_is_acked_by_the_layer() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let mut inv = request(Method::Invite, "z9hG4bKi1", "c1", 7);
        inv.headers.push("Route", "<sip:proxy.example;lr>");
        let key = l.send_request(t0, bob(), inv.clone());
        transmits(&mut l);
        let busy = Message::Response(response_to(&inv, 486, Some("b9")));
        l.handle_message(t0 + 10 * MS, bob(), busy.clone());
        assert!(matches!(
            events(&mut l).as_slice(),
            [Event::Response { key: k, response }] if *k == key && response.status == 486
        ));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].peer, bob());
        let Message::Request(ack) = wire(&sent[0]) else {
            panic!("ACK expected")
        };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        assert_eq!(ack.headers.cseq().unwrap().seq, 7);
        assert_eq!(ack.headers.cseq().unwrap().method, Method::Ack);
        assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKi1"));
        assert_eq!(ack.headers.to_addr().unwrap().tag(), Some("b9"));
        assert_eq!(ack.headers.from_addr().unwrap().tag(), Some("a1"));
        assert_eq!(ack.headers.call_id(), Some("c1"));
        assert_eq!(ack.headers.get("Route"), Some("<sip:proxy.example;lr>"));
        // A retransmitted 486 is absorbed and re-ACKed.
        l.handle_message(t0 + 600 * MS, bob(), busy);
        assert!(events(&mut l).is_empty());
        let again = transmits(&mut l);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].bytes, sent[0].bytes);
        // No more Timer A; Timer D (32 s) then ends the transaction.
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(tx.is_empty() && ev.is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn client_invite_2xx_is_reported_again_while_accepted() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let inv = request(Method::Invite, "z9hG4bKi2", "c1", 1);
        let key = l.send_request(t0, bob(), inv.clone());
        transmits(&mut l);
        let ok = Message::Response(response_to(&inv, 200, Some("b1")));
        l.handle_message(t0 + 10 * MS, bob(), ok.clone());
        l.handle_message(t0 + 510 * MS, bob(), ok.clone());
        let ev = events(&mut l);
        assert_eq!(ev.len(), 2);
        assert!(
            ev.iter()
                .all(|e| matches!(e, Event::Response { key: k, .. } if *k == key))
        );
        // The layer never ACKs a 2xx itself.
        assert!(transmits(&mut l).is_empty());
        // A late 4xx in Accepted is not reported.
        l.handle_message(
            t0 + 600 * MS,
            bob(),
            Message::Response(response_to(&inv, 404, Some("b2"))),
        );
        assert!(events(&mut l).is_empty());
        // Timer M.
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(tx.is_empty() && ev.is_empty());
        assert!(l.is_empty());
        l.handle_message(t0 + Duration::from_secs(40), bob(), ok);
        assert!(events(&mut l).is_empty());
    }

    #[test]
    fn cancel_answer_starts_64_t1_for_the_invite() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let inv = request(Method::Invite, "z9hG4bKi3", "c1", 1);
        let key = l.send_request(t0, bob(), inv.clone());
        l.handle_message(t0, bob(), Message::Response(response_to(&inv, 180, None)));
        let cancel = cancel_for(&inv);
        let ckey = l.send_request(t0 + MS, bob(), cancel.clone());
        l.handle_message(
            t0 + 2 * MS,
            bob(),
            Message::Response(response_to(&cancel, 200, None)),
        );
        assert!(matches!(
            events(&mut l).as_slice(),
            [Event::Response { .. }, Event::Response { key: k, response }] if *k == ckey && response.status == 200
        ));
        // No 487 ever comes: the INVITE times out 64*T1 after the CANCEL's 200.
        let (_, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert_eq!(
            ev,
            vec![(Duration::from_secs(32) + 2 * MS, Event::Timeout { key })]
        );
        assert!(l.is_empty());
    }

    #[test]
    fn cancel_for_copies_what_rfc3261_9_1_names() {
        let mut inv = request(Method::Invite, "z9hG4bKc1", "c1", 42);
        inv.headers
            .push_front("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc1");
        inv.headers.push("Route", "<sip:p1;lr>");
        inv.headers.push("Route", "<sip:p2;lr>");
        inv.headers.push("Contact", "<sip:alice@10.0.0.1>");
        let c = cancel_for(&inv);
        assert_eq!(c.method, Method::Cancel);
        assert_eq!(c.uri, inv.uri);
        assert_eq!(c.headers.count("Via"), 1);
        assert_eq!(c.headers.top_via().unwrap().branch(), Some("z9hG4bKc1"));
        assert_eq!(c.headers.get("From"), inv.headers.get("From"));
        assert_eq!(c.headers.get("To"), inv.headers.get("To"));
        assert_eq!(c.headers.get("Call-ID"), Some("c1"));
        assert_eq!(c.headers.get("CSeq"), Some("42 CANCEL"));
        assert_eq!(
            c.headers.get_all("Route").collect::<Vec<_>>(),
            ["<sip:p1;lr>", "<sip:p2;lr>"]
        );
        assert_eq!(c.headers.get("Contact"), None);
        assert_eq!(c.headers.get("Max-Forwards"), Some("70"));
        // It parses back.
        assert!(parse_message(&c.to_bytes()).is_ok());
    }

    #[test]
    fn responses_matching_nothing_are_dropped() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let req = request(Method::Options, "z9hG4bKm1", "c1", 1);
        l.send_request(t0, bob(), req.clone());
        transmits(&mut l);
        // Other branch.
        let other = request(Method::Options, "z9hG4bKzz", "c1", 1);
        l.handle_message(t0, bob(), Message::Response(response_to(&other, 200, None)));
        // Same branch, other method.
        let mut wrong = response_to(&req, 200, None);
        wrong.headers.set("CSeq", "1 INVITE");
        l.handle_message(t0, bob(), Message::Response(wrong));
        // No Via at all.
        let mut novia = response_to(&req, 200, None);
        novia.headers.remove("Via");
        l.handle_message(t0, bob(), Message::Response(novia));
        assert!(events(&mut l).is_empty());
        assert!(transmits(&mut l).is_empty());
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn transport_error_times_out_pending_client_transactions() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let peer = tcp([10, 0, 0, 2], 5060);
        let k1 = l.send_request(t0, peer, request(Method::Invite, "z9hG4bKx1", "c1", 1));
        let k2 = l.send_request(t0, peer, request(Method::Options, "z9hG4bKx2", "c2", 1));
        let other = l.send_request(t0, bob(), request(Method::Options, "z9hG4bKx3", "c3", 1));
        l.handle_transport_error(peer);
        let ev = events(&mut l);
        assert_eq!(
            ev,
            vec![Event::Timeout { key: k1 }, Event::Timeout { key: k2 }]
        );
        assert_eq!(l.len(), 1);
        let (_, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert_eq!(
            ev,
            vec![(Duration::from_secs(32), Event::Timeout { key: other })]
        );
    }

    #[test]
    fn ack_given_to_send_request_is_sent_without_a_transaction() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        l.send_request(t0, bob(), request(Method::Ack, "z9hG4bKack", "c1", 1));
        assert_eq!(transmits(&mut l).len(), 1);
        assert!(l.is_empty());
        assert_eq!(l.poll_timeout(), None);
    }

    // ---------------------------------------------------------------- server

    #[test]
    fn invite_server_sends_100_trying_at_once_and_absorbs_retransmissions() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let inv = request(Method::Invite, "z9hG4bKs1", "c1", 1);
        l.handle_message(t0, alice(), Message::Request(inv.clone()));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].peer, alice());
        let Message::Response(trying) = wire(&sent[0]) else {
            panic!()
        };
        assert_eq!(trying.status, 100);
        assert_eq!(trying.headers.to_addr().unwrap().tag(), None);
        assert_eq!(trying.headers.call_id(), Some("c1"));
        assert_eq!(trying.headers.get("CSeq"), Some("1 INVITE"));
        assert_eq!(
            trying.headers.top_via().unwrap().branch(),
            Some("z9hG4bKs1")
        );
        let ev = events(&mut l);
        assert!(
            matches!(ev.as_slice(), [Event::Request { request, peer, .. }] if request.method == Method::Invite && *peer == alice())
        );
        // Retransmission: 100 again, no event.
        l.handle_message(t0 + 500 * MS, alice(), Message::Request(inv));
        let again = transmits(&mut l);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].bytes, sent[0].bytes);
        assert!(events(&mut l).is_empty());
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn same_branch_from_another_sent_by_is_another_transaction() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let a = request(Method::Options, "z9hG4bKsame", "c1", 1);
        let mut b = a.clone();
        b.headers
            .set("Via", "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKsame");
        l.handle_message(t0, alice(), Message::Request(a.clone()));
        l.handle_message(t0, udp([10, 0, 0, 9], 5060), Message::Request(b));
        // Same branch, other method: another transaction too.
        let mut c = a;
        c.method = Method::Info;
        c.headers.set("CSeq", "1 INFO");
        l.handle_message(t0, alice(), Message::Request(c));
        assert_eq!(events(&mut l).len(), 3);
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn non_invite_retransmission_before_the_answer_is_absorbed_silently() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let req = request(Method::Register, "z9hG4bKs2", "c1", 1);
        l.handle_message(t0, alice(), Message::Request(req.clone()));
        assert!(transmits(&mut l).is_empty());
        assert_eq!(events(&mut l).len(), 1);
        l.handle_message(t0 + 500 * MS, alice(), Message::Request(req));
        assert!(transmits(&mut l).is_empty());
        assert!(events(&mut l).is_empty());
    }

    #[test]
    fn non_invite_final_is_resent_on_retransmission_until_timer_j() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let req = request(Method::Register, "z9hG4bKs3", "c1", 1);
        l.handle_message(t0, alice(), Message::Request(req.clone()));
        let Some(Event::Request { key, request, .. }) = l.poll_event() else {
            panic!()
        };
        l.respond(t0 + MS, key, response_to(&request, 100, None));
        l.respond(t0 + 2 * MS, key, response_to(&request, 401, Some("t1")));
        let sent = transmits(&mut l);
        assert_eq!(
            sent.iter().map(|t| status_of(&wire(t))).collect::<Vec<_>>(),
            [100, 401]
        );
        // A second final is refused.
        l.respond(t0 + 3 * MS, key, response_to(&request, 200, Some("t1")));
        assert!(transmits(&mut l).is_empty());
        for i in 1..4 {
            l.handle_message(
                t0 + i * Duration::from_secs(1),
                alice(),
                Message::Request(req.clone()),
            );
            let again = transmits(&mut l);
            assert_eq!(again.len(), 1);
            assert_eq!(status_of(&wire(&again[0])), 401);
        }
        assert!(events(&mut l).is_empty());
        // Timer J = 64*T1 after the final.
        l.handle_timeout(t0 + 2 * MS + Duration::from_secs(32) - MS);
        assert_eq!(l.len(), 1);
        l.handle_timeout(t0 + 2 * MS + Duration::from_secs(32));
        assert!(l.is_empty());
        // Now the same request is new again.
        l.handle_message(t0 + Duration::from_secs(40), alice(), Message::Request(req));
        assert_eq!(events(&mut l).len(), 1);
    }

    #[test]
    fn unanswered_non_invite_server_transaction_is_dropped_after_64_t1() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        l.handle_message(
            t0,
            alice(),
            Message::Request(request(Method::Options, "z9hG4bKs4", "c1", 1)),
        );
        let Some(Event::Request { key, request, .. }) = l.poll_event() else {
            panic!()
        };
        run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(l.is_empty());
        l.respond(
            t0 + Duration::from_secs(100),
            key,
            response_to(&request, 200, None),
        );
        assert!(transmits(&mut l).is_empty());
    }

    #[test]
    fn tcp_server_non_invite_forgets_after_final_timer_j_zero() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let peer = tcp([10, 0, 0, 1], 40000);
        l.handle_message(
            t0,
            peer,
            Message::Request(request(Method::Options, "z9hG4bKs5", "c1", 1)),
        );
        let Some(Event::Request { key, request, .. }) = l.poll_event() else {
            panic!()
        };
        l.respond(t0, key, response_to(&request, 200, None));
        assert_eq!(transmits(&mut l)[0].peer, peer);
        assert!(l.is_empty());
        assert_eq!(l.poll_timeout(), None);
    }

    /// An INVITE server transaction answered `status`; returns the layer,
    /// the key, the request as reported, and the time of the answer.
    fn answered_invite(status: u16, peer: Peer) -> (TransactionLayer, TxKey, Request, Instant) {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let inv = request(Method::Invite, "z9hG4bKsi", "c1", 1);
        l.handle_message(t0, peer, Message::Request(inv));
        let Some(Event::Request { key, request, .. }) = l.poll_event() else {
            panic!()
        };
        transmits(&mut l);
        l.respond(t0, key, response_to(&request, status, Some("s1")));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(status_of(&wire(&sent[0])), status);
        (l, key, request, t0)
    }

    fn ack_for_test(seq: u32, branch: &str) -> Request {
        let mut a = request(Method::Ack, branch, "c1", seq);
        a.headers.set("To", "<sip:bob@b.example>;tag=s1");
        a
    }

    #[test]
    fn invite_error_is_retransmitted_with_timer_g_until_the_ack() {
        let (mut l, _key, _req, t0) = answered_invite(486, alice());
        let (tx, _) = run_until(&mut l, t0, t0 + Duration::from_secs(10));
        let times: Vec<Duration> = tx.iter().map(|(d, _)| *d).collect();
        assert_eq!(times, secs(&[0.5, 1.5, 3.5, 7.5]));
        assert!(
            tx.iter()
                .all(|(_, t)| status_of(&wire(t)) == 486 && t.peer == alice())
        );
        // The ACK (same branch as the INVITE) is absorbed.
        let now = t0 + Duration::from_secs(10);
        l.handle_message(now, alice(), Message::Request(ack_for_test(1, "z9hG4bKsi")));
        assert!(events(&mut l).is_empty());
        // Retransmitted INVITE in Confirmed: nothing sent.
        l.handle_message(
            now + MS,
            alice(),
            Message::Request(request(Method::Invite, "z9hG4bKsi", "c1", 1)),
        );
        assert!(transmits(&mut l).is_empty());
        // Timer I = T4.
        assert_eq!(l.poll_timeout(), Some(now + Duration::from_secs(5)));
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(tx.is_empty() && ev.is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn timer_h_ends_an_invite_error_that_is_never_acked() {
        let (mut l, _key, _req, t0) = answered_invite(503, alice());
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        let times: Vec<Duration> = tx.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            times,
            secs(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        );
        assert!(ev.is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn tcp_invite_error_is_not_retransmitted_and_ack_ends_it() {
        let peer = tcp([10, 0, 0, 1], 40000);
        let (mut l, _key, _req, t0) = answered_invite(486, peer);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        l.handle_message(
            t0 + MS,
            peer,
            Message::Request(ack_for_test(1, "z9hG4bKsi")),
        );
        assert!(l.is_empty());
        assert!(events(&mut l).is_empty());
    }

    #[test]
    fn invite_2xx_is_retransmitted_until_an_ack_with_same_call_id_and_cseq() {
        let (mut l, _key, _req, t0) = answered_invite(200, alice());
        let (tx, _) = run_until(&mut l, t0, t0 + Duration::from_secs(8));
        let times: Vec<Duration> = tx.iter().map(|(d, _)| *d).collect();
        assert_eq!(times, secs(&[0.5, 1.5, 3.5, 7.5]));
        // An ACK for another CSeq does not stop it (but is reported: stray).
        let now = t0 + Duration::from_secs(8);
        l.handle_message(
            now,
            alice(),
            Message::Request(ack_for_test(2, "z9hG4bKother")),
        );
        assert_eq!(events(&mut l).len(), 1);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs_f64(11.5)));
        // The right ACK, with its own branch as RFC 3261 wants.
        l.handle_message(
            now,
            alice(),
            Message::Request(ack_for_test(1, "z9hG4bKack")),
        );
        match events(&mut l).as_slice() {
            [Event::Ack { request, peer }] => {
                assert_eq!(request.method, Method::Ack);
                assert_eq!(*peer, alice());
            }
            other => panic!("{other:?}"),
        }
        // No more 2xx; the transaction stays until Timer L, absorbing
        // INVITE retransmissions.
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(31));
        assert!(tx.is_empty() && ev.is_empty());
        assert_eq!(l.len(), 1);
        l.handle_message(
            t0 + Duration::from_secs(31),
            alice(),
            Message::Request(request(Method::Invite, "z9hG4bKsi", "c1", 1)),
        );
        assert!(events(&mut l).is_empty());
        run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert!(l.is_empty());
    }

    #[test]
    fn unacked_invite_2xx_stops_after_64_t1() {
        let (mut l, _key, _req, t0) = answered_invite(200, alice());
        let (tx, ev) = run_until(&mut l, t0, t0 + Duration::from_secs(100));
        assert_eq!(tx.len(), 10);
        assert!(tx.iter().all(|(d, _)| *d < Duration::from_secs(32)));
        assert!(ev.is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn cancel_of_a_pending_invite_is_answered_and_reported() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let inv = request(Method::Invite, "z9hG4bKcc", "c1", 1);
        l.handle_message(t0, alice(), Message::Request(inv.clone()));
        let Some(Event::Request {
            key,
            request: invite,
            ..
        }) = l.poll_event()
        else {
            panic!()
        };
        l.respond(t0, key, response_to(&invite, 180, Some("s7")));
        transmits(&mut l);
        let cancel = cancel_for(&inv);
        l.handle_message(t0 + MS, alice(), Message::Request(cancel.clone()));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        let Message::Response(ok) = wire(&sent[0]) else {
            panic!()
        };
        assert_eq!(ok.status, 200);
        assert_eq!(ok.headers.cseq().unwrap().method, Method::Cancel);
        assert_eq!(ok.headers.to_addr().unwrap().tag(), Some("s7"));
        match events(&mut l).as_slice() {
            [Event::Cancel { invite: k, request }] => {
                assert_eq!(*k, key);
                assert_eq!(request.method, Method::Cancel);
            }
            other => panic!("{other:?}"),
        }
        // The CANCEL retransmitted: 200 again, not reported again.
        l.handle_message(t0 + 500 * MS, alice(), Message::Request(cancel.clone()));
        assert_eq!(transmits(&mut l)[0].bytes, sent[0].bytes);
        assert!(events(&mut l).is_empty());
        // The TU ends the INVITE with 487.
        l.respond(t0 + 2 * MS, key, response_to(&invite, 487, Some("s7")));
        assert_eq!(status_of(&wire(&transmits(&mut l)[0])), 487);
        drop(cancel);
    }

    #[test]
    fn cancel_after_the_final_response_gets_200_without_event() {
        let (mut l, _key, _req, t0) = answered_invite(486, alice());
        let cancel = cancel_for(&request(Method::Invite, "z9hG4bKsi", "c1", 1));
        l.handle_message(t0 + MS, alice(), Message::Request(cancel));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(status_of(&wire(&sent[0])), 200);
        assert!(events(&mut l).is_empty());
    }

    #[test]
    fn cancel_matching_nothing_gets_481_and_is_not_reported() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let cancel = cancel_for(&request(Method::Invite, "z9hG4bKnone", "c1", 1));
        l.handle_message(t0, alice(), Message::Request(cancel.clone()));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        let Message::Response(r) = wire(&sent[0]) else {
            panic!()
        };
        assert_eq!(r.status, 481);
        assert!(r.headers.to_addr().unwrap().tag().is_some());
        assert!(events(&mut l).is_empty());
        l.handle_message(t0 + MS, alice(), Message::Request(cancel));
        assert_eq!(transmits(&mut l)[0].bytes, sent[0].bytes);
    }

    #[test]
    fn rport_and_received_are_stamped_on_the_top_via() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let mut req = request(Method::Options, "", "c1", 1);
        req.headers
            .set("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnat;rport");
        req.headers
            .push("Via", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKdown");
        let nat = udp([192, 0, 2, 7], 40000);
        l.handle_message(t0, nat, Message::Request(req));
        let Some(Event::Request { key, request, peer }) = l.poll_event() else {
            panic!()
        };
        assert_eq!(peer, nat);
        let vias = request.headers.vias().unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].param("received"), Some(Some("192.0.2.7")));
        assert_eq!(vias[0].param("rport"), Some(Some("40000")));
        assert_eq!(vias[0].branch(), Some("z9hG4bKnat"));
        assert_eq!(vias[1].branch(), Some("z9hG4bKdown"));
        assert_eq!(vias[1].param("received"), None);
        l.respond(t0, key, response_to(&request, 200, None));
        let sent = transmits(&mut l);
        assert_eq!(sent[0].peer, nat);
        let via = wire(&sent[0]).headers().top_via().unwrap();
        assert_eq!(via.param("rport"), Some(Some("40000")));
    }

    #[test]
    fn received_is_added_only_when_the_host_differs_without_rport() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let req = request(Method::Options, "z9hG4bKv1", "c1", 1);
        l.handle_message(t0, alice(), Message::Request(req.clone()));
        let Some(Event::Request { request, .. }) = l.poll_event() else {
            panic!()
        };
        assert_eq!(
            request.headers.get_all("Via").collect::<Vec<_>>(),
            req.headers.get_all("Via").collect::<Vec<_>>()
        );
        let mut named = request_with_via("SIP/2.0/UDP alice.example:5060;branch=z9hG4bKv2");
        named.headers.set("Call-ID", "c2");
        l.handle_message(t0, alice(), Message::Request(named));
        let Some(Event::Request { request, .. }) = l.poll_event() else {
            panic!()
        };
        let via = request.headers.top_via().unwrap();
        assert_eq!(via.param("received"), Some(Some("10.0.0.1")));
        assert_eq!(via.param("rport"), None);
    }

    fn request_with_via(via: &str) -> Request {
        let mut r = request(Method::Options, "x", "c1", 1);
        r.headers.set("Via", via);
        r
    }

    #[test]
    fn rfc2543_fallback_matches_retransmissions_and_the_ack() {
        for via in [
            "SIP/2.0/UDP 10.0.0.1:5060",
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK",
            "SIP/2.0/UDP 10.0.0.1:5060;branch=old2543",
        ] {
            let mut l = TransactionLayer::new(Timers::default());
            let t0 = Instant::now();
            let mut inv = request_with_via(via);
            inv.method = Method::Invite;
            inv.headers.set("CSeq", "5 INVITE");
            l.handle_message(t0, alice(), Message::Request(inv.clone()));
            let Some(Event::Request { key, request, .. }) = l.poll_event() else {
                panic!()
            };
            transmits(&mut l);
            l.handle_message(t0 + MS, alice(), Message::Request(inv.clone()));
            assert!(events(&mut l).is_empty(), "{via}: retransmission");
            assert_eq!(transmits(&mut l).len(), 1, "{via}: 100 re-sent");
            // Another CSeq is another transaction.
            let mut next = inv.clone();
            next.headers.set("CSeq", "6 INVITE");
            l.handle_message(t0 + MS, alice(), Message::Request(next));
            assert_eq!(events(&mut l).len(), 1, "{via}: new CSeq");
            l.respond(t0 + 2 * MS, key, response_to(&request, 486, Some("s1")));
            transmits(&mut l);
            let mut ack = request_with_via(via);
            ack.method = Method::Ack;
            ack.headers.set("CSeq", "5 ACK");
            ack.headers.set("To", "<sip:bob@b.example>;tag=s1");
            l.handle_message(t0 + 3 * MS, alice(), Message::Request(ack));
            assert!(events(&mut l).is_empty(), "{via}: ACK absorbed");
            let (tx, _) = run_until(&mut l, t0, t0 + Duration::from_secs(1));
            assert!(tx.is_empty(), "{via}: no Timer G after the ACK");
        }
    }

    #[test]
    fn requests_without_via_or_cseq_are_dropped() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let mut a = request(Method::Options, "z9hG4bKd1", "c1", 1);
        a.headers.remove("Via");
        let mut b = request(Method::Options, "z9hG4bKd2", "c1", 1);
        b.headers.remove("CSeq");
        let mut c = request(Method::Options, "", "c1", 1);
        c.headers.remove("Call-ID");
        for r in [a, b, c] {
            l.handle_message(t0, alice(), Message::Request(r));
        }
        assert!(events(&mut l).is_empty());
        assert!(transmits(&mut l).is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn many_transactions_use_no_scan_and_are_all_cleaned_up() {
        let mut l = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let n = 20_000u32;
        for i in 0..n {
            let r = request(
                Method::Register,
                &format!("z9hG4bK{i}"),
                &format!("c{i}"),
                1,
            );
            l.handle_message(t0, alice(), Message::Request(r));
        }
        assert_eq!(l.len(), n as usize);
        while let Some(Event::Request { key, request, .. }) = l.poll_event() {
            l.respond(t0 + MS, key, response_to(&request, 200, Some("t")));
        }
        assert_eq!(transmits(&mut l).len(), n as usize);
        l.handle_timeout(t0 + Duration::from_secs(33));
        assert!(l.is_empty());
        assert_eq!(l.poll_timeout(), None);
        assert!(l.heap.is_empty());
        assert!(l.server_index.is_empty());
    }

    // ------------------------------------------------------- simulated pair

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Side {
        A,
        B,
    }

    /// A deterministic pseudo-random generator (xorshift64*), so failures
    /// reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    type DropFn = Box<dyn FnMut(Side, &Message) -> bool>;
    type TuFn = Box<dyn FnMut(&mut TransactionLayer, Instant, &Event)>;

    /// Two endpoints over a simulated network (quinn-proto's `Pair`): A at
    /// 10.0.0.1:5060, B at 10.0.0.2:5060, a virtual clock, latency with
    /// jitter (so packets reorder), and a loss function. Every message goes
    /// through `to_bytes` and `parse_message`.
    struct SipPair {
        now: Instant,
        a: TransactionLayer,
        b: TransactionLayer,
        latency: Duration,
        jitter_ms: u64,
        rng: Rng,
        drop: DropFn,
        in_flight: Vec<(Instant, u64, Side, Vec<u8>)>,
        seq: u64,
        a_events: Vec<Event>,
        b_events: Vec<Event>,
        /// Messages each side put on the wire (before loss).
        a_sent: Vec<Message>,
        b_sent: Vec<Message>,
        tu_a: TuFn,
        tu_b: TuFn,
    }

    impl SipPair {
        fn new() -> SipPair {
            SipPair {
                now: Instant::now(),
                a: TransactionLayer::new(Timers::default()),
                b: TransactionLayer::new(Timers::default()),
                latency: 20 * MS,
                jitter_ms: 0,
                rng: Rng(0x9e37_79b9_7f4a_7c15),
                drop: Box::new(|_, _| false),
                in_flight: Vec::new(),
                seq: 0,
                a_events: Vec::new(),
                b_events: Vec::new(),
                a_sent: Vec::new(),
                b_sent: Vec::new(),
                tu_a: Box::new(|_, _, _| {}),
                tu_b: Box::new(|_, _, _| {}),
            }
        }

        /// Moves transmits to the network and events to the TUs until
        /// nothing is left to do at the current time.
        fn settle(&mut self) {
            loop {
                let mut progress = false;
                for side in [Side::A, Side::B] {
                    let layer = match side {
                        Side::A => &mut self.a,
                        Side::B => &mut self.b,
                    };
                    while let Some(t) = layer.poll_transmit() {
                        progress = true;
                        let expected = match side {
                            Side::A => bob(),
                            Side::B => alice(),
                        };
                        assert_eq!(t.peer, expected);
                        let msg = parse_message(&t.bytes).expect("parsable");
                        match side {
                            Side::A => self.a_sent.push(msg.clone()),
                            Side::B => self.b_sent.push(msg.clone()),
                        }
                        if (self.drop)(side, &msg) {
                            continue;
                        }
                        let jitter = if self.jitter_ms > 0 {
                            Duration::from_millis(self.rng.below(self.jitter_ms))
                        } else {
                            Duration::ZERO
                        };
                        self.seq += 1;
                        self.in_flight.push((
                            self.now + self.latency + jitter,
                            self.seq,
                            side,
                            t.bytes,
                        ));
                    }
                    while let Some(e) = match side {
                        Side::A => self.a.poll_event(),
                        Side::B => self.b.poll_event(),
                    } {
                        progress = true;
                        match side {
                            Side::A => {
                                (self.tu_a)(&mut self.a, self.now, &e);
                                self.a_events.push(e);
                            }
                            Side::B => {
                                (self.tu_b)(&mut self.b, self.now, &e);
                                self.b_events.push(e);
                            }
                        }
                    }
                }
                if !progress {
                    break;
                }
            }
        }

        /// Runs until nothing is in flight and no timer is due before `until`.
        fn drive(&mut self, until: Instant) {
            loop {
                self.settle();
                let next_packet = self.in_flight.iter().map(|p| (p.0, p.1)).min();
                let next = [
                    next_packet.map(|p| p.0),
                    self.a.poll_timeout(),
                    self.b.poll_timeout(),
                ]
                .into_iter()
                .flatten()
                .min();
                let Some(next) = next else { break };
                if next > until {
                    break;
                }
                self.now = next;
                // Deliver everything due, in arrival order.
                self.in_flight.sort_by_key(|p| (p.0, p.1));
                while self.in_flight.first().is_some_and(|p| p.0 <= self.now) {
                    let (_, _, from, bytes) = self.in_flight.remove(0);
                    let msg = parse_message(&bytes).expect("parsable");
                    match from {
                        Side::A => self.b.handle_message(self.now, alice(), msg),
                        Side::B => self.a.handle_message(self.now, bob(), msg),
                    }
                    self.settle();
                }
                self.a.handle_timeout(self.now);
                self.b.handle_timeout(self.now);
            }
        }
    }

    fn is_request(m: &Message, method: Method) -> bool {
        matches!(m, Message::Request(r) if r.method == method)
    }

    fn is_status(m: &Message, status: u16) -> bool {
        matches!(m, Message::Response(r) if r.status == status)
    }

    #[test]
    fn pair_non_invite_survives_loss_of_the_first_two_requests() {
        let mut p = SipPair::new();
        let mut lost = 0;
        p.drop = Box::new(move |side, m| {
            if side == Side::A && is_request(m, Method::Options) && lost < 2 {
                lost += 1;
                return true;
            }
            false
        });
        p.tu_b = Box::new(|l, now, e| {
            if let Event::Request { key, request, .. } = e {
                l.respond(now, *key, response_to(request, 200, Some("b")));
            }
        });
        let t0 = p.now;
        let key =
            p.a.send_request(t0, bob(), request(Method::Options, "z9hG4bKp1", "c1", 1));
        p.drive(t0 + Duration::from_secs(60));
        assert_eq!(p.b_events.len(), 1, "B saw the request once");
        assert!(matches!(
            p.a_events.as_slice(),
            [Event::Response { key: k, response }] if *k == key && response.status == 200
        ));
        // Sent at 0, 0.5, 1.5 (the third arrives and is answered).
        assert_eq!(p.a_sent.len(), 3);
        assert!(p.a.is_empty() && p.b.is_empty());
    }

    #[test]
    fn pair_rejected_invite_with_lost_ack_is_reacked_by_the_layer() {
        let mut p = SipPair::new();
        let mut acks = 0;
        p.drop = Box::new(move |side, m| {
            if side == Side::A && is_request(m, Method::Ack) {
                acks += 1;
                return acks == 1;
            }
            false
        });
        p.tu_b = Box::new(|l, now, e| {
            if let Event::Request { key, request, .. } = e {
                l.respond(now, *key, response_to(request, 486, Some("b")));
            }
        });
        let t0 = p.now;
        p.a.send_request(t0, bob(), request(Method::Invite, "z9hG4bKp2", "c1", 1));
        p.drive(t0 + Duration::from_secs(60));
        assert_eq!(p.b_events.len(), 1, "the ACK is absorbed at B");
        let statuses: Vec<u16> = p
            .a_events
            .iter()
            .filter_map(|e| match e {
                Event::Response { response, .. } => Some(response.status),
                _ => None,
            })
            .collect();
        assert_eq!(
            statuses,
            [100, 486],
            "the 486 retransmission is absorbed at A"
        );
        assert_eq!(
            p.a_sent
                .iter()
                .filter(|m| is_request(m, Method::Ack))
                .count(),
            2
        );
        assert_eq!(p.b_sent.iter().filter(|m| is_status(m, 486)).count(), 2);
        assert_eq!(p.b_sent.iter().filter(|m| is_status(m, 100)).count(), 1);
        assert!(p.a.is_empty() && p.b.is_empty());
    }

    #[test]
    fn pair_accepted_invite_with_lost_2xx_is_retransmitted_until_acked() {
        let mut p = SipPair::new();
        let mut oks = 0;
        p.drop = Box::new(move |side, m| {
            if side == Side::B && is_status(m, 200) {
                oks += 1;
                return oks <= 2;
            }
            false
        });
        p.tu_b = Box::new(|l, now, e| {
            if let Event::Request { key, request, .. } = e {
                l.respond(now, *key, response_to(request, 200, Some("b")));
            }
        });
        let inv = request(Method::Invite, "z9hG4bKp3", "c1", 1);
        p.tu_a = Box::new(move |l, _now, e| {
            if let Event::Response { response, .. } = e
                && response.status == 200
            {
                // The TU ACKs the 2xx, outside the transaction.
                let mut ack = request(Method::Ack, "z9hG4bKack3", "c1", 1);
                ack.headers
                    .set("To", response.headers.get("To").unwrap_or_default());
                l.send_stateless(bob(), Message::Request(ack));
            }
        });
        let t0 = p.now;
        p.a.send_request(t0, bob(), inv);
        p.drive(t0 + Duration::from_secs(60));
        assert_eq!(p.b_sent.iter().filter(|m| is_status(m, 200)).count(), 3);
        assert!(matches!(
            p.b_events.as_slice(),
            [Event::Request { .. }, Event::Ack { .. }]
        ));
        assert_eq!(
            p.a_events
                .iter()
                .filter(|e| matches!(e, Event::Response { .. }))
                .count(),
            2
        );
        assert!(p.a.is_empty() && p.b.is_empty());
    }

    #[test]
    fn pair_cancel_ends_a_ringing_invite_with_487() {
        let mut p = SipPair::new();
        p.tu_b = Box::new(|l, now, e| match e {
            Event::Request { key, request, .. } => {
                l.respond(now, *key, response_to(request, 180, Some("b")));
            }
            Event::Cancel { invite, request } => {
                // Build the 487 from the CANCEL's headers (same Via branch,
                // Call-ID, From), CSeq of the INVITE.
                let mut r = response_to(request, 487, Some("b"));
                r.headers.set("CSeq", "1 INVITE");
                l.respond(now, *invite, r);
            }
            _ => {}
        });
        let inv = request(Method::Invite, "z9hG4bKp4", "c1", 1);
        let inv2 = inv.clone();
        p.tu_a = Box::new(move |l, now, e| {
            if let Event::Response { response, .. } = e
                && response.status == 180
            {
                l.send_request(now, bob(), cancel_for(&inv2));
            }
        });
        let t0 = p.now;
        let key = p.a.send_request(t0, bob(), inv);
        p.drive(t0 + Duration::from_secs(60));
        let statuses: Vec<u16> = p
            .a_events
            .iter()
            .filter_map(|e| match e {
                Event::Response { key: k, response } if *k == key => Some(response.status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [100, 180, 487]);
        assert!(p.a_sent.iter().any(|m| is_request(m, Method::Ack)));
        assert!(matches!(
            p.b_events.as_slice(),
            [Event::Request { .. }, Event::Cancel { .. }]
        ));
        assert!(p.a.is_empty() && p.b.is_empty());
    }

    #[test]
    fn pair_many_transactions_with_random_loss_and_reordering() {
        let mut p = SipPair::new();
        p.jitter_ms = 300;
        let mut rng = Rng(12345);
        p.drop = Box::new(move |_, _| rng.below(100) < 25);
        p.tu_b = Box::new(|l, now, e| {
            if let Event::Request { key, request, .. } = e {
                let status = if request.method == Method::Invite {
                    486
                } else {
                    200
                };
                l.respond(now, *key, response_to(request, status, Some("b")));
            }
        });
        let t0 = p.now;
        let mut keys = Vec::new();
        for i in 0..200u32 {
            let m = if i % 4 == 0 {
                Method::Invite
            } else {
                Method::Options
            };
            let r = request(m, &format!("z9hG4bKr{i}"), &format!("c{i}"), 1);
            keys.push(p.a.send_request(t0 + i * MS, bob(), r));
        }
        p.drive(t0 + Duration::from_secs(120));
        // B reported every request it got exactly once.
        let mut seen = std::collections::HashSet::new();
        for e in &p.b_events {
            if let Event::Request { request, .. } = e {
                assert!(seen.insert(request.headers.call_id().unwrap_or_default().to_string()));
            }
        }
        // A: each transaction ends in exactly one final response or one timeout.
        for k in &keys {
            let finals = p
                .a_events
                .iter()
                .filter(|e| match e {
                    Event::Response { key, response } => key == k && response.status >= 200,
                    Event::Timeout { key } => key == k,
                    _ => false,
                })
                .count();
            assert_eq!(finals, 1, "{k:?}");
        }
        let timeouts = p
            .a_events
            .iter()
            .filter(|e| matches!(e, Event::Timeout { .. }))
            .count();
        assert!(timeouts < 5, "{timeouts} timeouts at 25% loss");
        assert!(p.a.is_empty() && p.b.is_empty());
    }
}
