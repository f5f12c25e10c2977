//! The SIP driver: owns the UDP socket, the TCP listener and connections, and
//! the sans-IO [`TransactionLayer`]. It stays thin (quinn's `drive_timer` /
//! `drive_transmit` shape): bytes in → parse → layer; layer events → the
//! [`Dispatcher`]; layer transmits → sockets; `poll_timeout` → one sleep.
//!
//! Everything else talks to it through a cloneable [`SipHandle`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use plugboard_sip::check::{check_request, check_response};
use plugboard_sip::framing::{FrameError, StreamFramer};
use plugboard_sip::parse::{parse_message, reject_response};
use plugboard_sip::transaction::{Event, Peer, Timers, TransactionLayer, Transport, TxKey};
use plugboard_sip::{Message, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Largest SIP message accepted on a stream (and the UDP receive buffer).
const MAX_MESSAGE: usize = 65_535;

/// What a client transaction reports to the code that started it.
#[derive(Debug)]
pub enum ClientEvent {
    Response(Response),
    Timeout,
}

/// Receives what the transaction layer reports: new requests, ACKs, CANCELs.
pub trait Dispatcher: Send + Sync + 'static {
    fn request(&self, key: TxKey, request: Request, peer: Peer);
    fn ack(&self, request: Request, peer: Peer);
    fn cancel(&self, invite: TxKey, request: Request);
}

enum Cmd {
    Respond(TxKey, Response),
    Request(Peer, Request, mpsc::UnboundedSender<ClientEvent>),
    Stateless(Peer, Message),
    Incoming(Peer, Message),
    TcpClosed(SocketAddr),
    TcpConnected(SocketAddr, mpsc::UnboundedSender<Vec<u8>>),
}

/// A cloneable handle to the SIP driver.
#[derive(Clone)]
pub struct SipHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The address the UDP socket is bound to (for Via and Contact).
    pub udp_addr: Option<SocketAddr>,
    /// The address the TCP listener is bound to.
    pub tcp_addr: Option<SocketAddr>,
}

impl SipHandle {
    /// Answer a server transaction.
    pub fn respond(&self, key: TxKey, response: Response) {
        let _ = self.tx.send(Cmd::Respond(key, response));
    }
    /// Start a client transaction; responses and the timeout arrive on the returned channel.
    pub fn request(&self, peer: Peer, request: Request) -> mpsc::UnboundedReceiver<ClientEvent> {
        let (etx, erx) = mpsc::unbounded_channel();
        let _ = self.tx.send(Cmd::Request(peer, request, etx));
        erx
    }
    /// Starts a client transaction and waits, at most `limit`, for its final
    /// response. None on timeout (transaction or `limit`).
    pub async fn request_final(
        &self,
        peer: Peer,
        request: Request,
        limit: Duration,
    ) -> Option<Response> {
        let mut rx = self.request(peer, request);
        tokio::time::timeout(limit, async {
            while let Some(ev) = rx.recv().await {
                match ev {
                    ClientEvent::Response(r) if r.status >= 200 => return Some(r),
                    ClientEvent::Response(_) => {}
                    ClientEvent::Timeout => return None,
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    /// Send outside any transaction (ACK for a 2xx).
    pub fn send_stateless(&self, peer: Peer, msg: Message) {
        let _ = self.tx.send(Cmd::Stateless(peer, msg));
    }
    /// The local address to advertise for a transport (Via sent-by, Contact).
    pub fn local_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tcp => self.tcp_addr.or(self.udp_addr),
            Transport::Udp => self.udp_addr.or(self.tcp_addr),
        }
        .expect("at least one SIP transport is bound")
    }
}

/// Binds the sockets and starts the driver task.
pub async fn start(
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    advertise: std::net::IpAddr,
    dispatcher: Arc<dyn Dispatcher>,
) -> anyhow::Result<SipHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    let udp_sock = match udp {
        Some(a) => Some(Arc::new(bind_udp(a).with_context(|| {
            format!("cannot bind SIP UDP {a} (is the port in use?)")
        })?)),
        None => None,
    };
    let listener = match tcp {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot bind SIP TCP {a} (is the port in use?)"))?,
        ),
        None => None,
    };
    let fix = |a: SocketAddr| {
        if a.ip().is_unspecified() {
            SocketAddr::new(advertise, a.port())
        } else {
            a
        }
    };
    let udp_addr = match &udp_sock {
        Some(s) => Some(fix(s.local_addr()?)),
        None => None,
    };
    let tcp_addr = match &listener {
        Some(l) => Some(fix(l.local_addr()?)),
        None => None,
    };
    if let Some(l) = listener {
        tokio::spawn(accept_loop(l, tx.clone()));
    }
    if let Some(s) = &udp_sock {
        tokio::spawn(udp_recv_loop(s.clone(), tx.clone()));
    }
    let driver = Driver {
        layer: TransactionLayer::new(Timers::default()),
        udp: udp_sock,
        tcp: HashMap::new(),
        clients: HashMap::new(),
        dispatcher,
        cmd_tx: tx.clone(),
    };
    tokio::spawn(driver.run(rx));
    Ok(SipHandle {
        tx,
        udp_addr,
        tcp_addr,
    })
}

/// Socket buffers for the SIP UDP socket: bursts of thousands of requests per
/// second overflow the kernel default (about 200 KiB), and every dropped
/// datagram comes back as a retransmission.
const UDP_BUFFER: usize = 4 * 1024 * 1024;

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = sock.set_recv_buffer_size(UDP_BUFFER);
    let _ = sock.set_send_buffer_size(UDP_BUFFER);
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

struct Driver {
    layer: TransactionLayer,
    udp: Option<Arc<UdpSocket>>,
    tcp: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    clients: HashMap<TxKey, mpsc::UnboundedSender<ClientEvent>>,
    dispatcher: Arc<dyn Dispatcher>,
    cmd_tx: mpsc::UnboundedSender<Cmd>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            let deadline = self.layer.poll_timeout();
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    self.handle_cmd(cmd);
                    // Drain what is already queued before touching timers and sockets.
                    while let Ok(cmd) = rx.try_recv() {
                        self.handle_cmd(cmd);
                    }
                }
                _ = sleep_until(deadline) => {
                    self.layer.handle_timeout(Instant::now().into_std());
                }
            }
            self.drain();
        }
    }

    fn handle_cmd(&mut self, cmd: Cmd) {
        let now = Instant::now().into_std();
        match cmd {
            Cmd::Incoming(peer, msg) => {
                match &msg {
                    // Responses with overlarge scalars (RFC 4475 3.1.2.5) are dropped.
                    Message::Response(r) if !check_response(r) => {
                        debug!(%peer.addr, "dropping malformed response");
                        return;
                    }
                    // A request the host cannot act on is answered here, statelessly:
                    // the transaction layer needs a sane Via and CSeq to match it at all.
                    Message::Request(r) => {
                        if let Err(resp) = check_request(r) {
                            if r.method != plugboard_sip::Method::Ack {
                                debug!(%peer.addr, status = resp.status, "refusing request");
                                self.layer.send_stateless(peer, Message::Response(resp));
                            }
                            return;
                        }
                    }
                    _ => {}
                }
                self.layer.handle_message(now, peer, msg)
            }
            Cmd::Respond(key, resp) => self.layer.respond(now, key, resp),
            Cmd::Request(peer, req, events) => {
                let key = self.layer.send_request(now, peer, req);
                self.clients.insert(key, events);
            }
            Cmd::Stateless(peer, msg) => self.layer.send_stateless(peer, msg),
            Cmd::TcpConnected(addr, w) => {
                self.tcp.insert(addr, w);
            }
            Cmd::TcpClosed(addr) => {
                self.tcp.remove(&addr);
                self.layer.handle_transport_error(Peer {
                    transport: Transport::Tcp,
                    addr,
                });
            }
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.layer.poll_transmit() {
            self.transmit(t.peer, t.bytes);
        }
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                Event::Request { key, request, peer } => {
                    self.dispatcher.request(key, request, peer)
                }
                Event::Ack { request, peer } => self.dispatcher.ack(request, peer),
                Event::Cancel { invite, request } => self.dispatcher.cancel(invite, request),
                Event::Response { key, response } => {
                    // A 2xx to INVITE may be retransmitted and must be re-ACKed: keep the
                    // route until the receiver is dropped. Other finals end the route.
                    let invite_2xx = (200..300).contains(&response.status)
                        && matches!(response.headers.cseq(), Ok(c) if c.method == plugboard_sip::Method::Invite);
                    let done = response.status >= 200 && !invite_2xx;
                    if let Some(c) = self.clients.get(&key)
                        && (c.send(ClientEvent::Response(response)).is_err() || done)
                    {
                        self.clients.remove(&key);
                    }
                }
                Event::Timeout { key } => {
                    if let Some(c) = self.clients.remove(&key) {
                        let _ = c.send(ClientEvent::Timeout);
                    }
                }
            }
        }
        // Transmits produced while dispatching events (none today, but cheap).
        while let Some(t) = self.layer.poll_transmit() {
            self.transmit(t.peer, t.bytes);
        }
    }

    fn transmit(&mut self, peer: Peer, bytes: Vec<u8>) {
        match peer.transport {
            Transport::Udp => {
                if let Some(s) = &self.udp {
                    // try_send_to: never block the driver; a full socket buffer drops
                    // the datagram, which UDP retransmission timers cover.
                    if let Err(e) = s.try_send_to(&bytes, peer.addr) {
                        debug!(%peer.addr, "udp send failed: {e}");
                    }
                }
            }
            Transport::Tcp => match self.tcp.get(&peer.addr) {
                Some(w) => {
                    let _ = w.send(bytes);
                }
                None => {
                    // No connection: open one (RFC 3261 18.1.1); queue the bytes on it.
                    let (wtx, wrx) = mpsc::unbounded_channel();
                    let _ = wtx.send(bytes);
                    self.tcp.insert(peer.addr, wtx.clone());
                    let cmd = self.cmd_tx.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(
                            Duration::from_secs(5),
                            TcpStream::connect(peer.addr),
                        )
                        .await
                        {
                            Ok(Ok(stream)) => run_tcp(stream, peer.addr, cmd, wtx, wrx).await,
                            _ => {
                                warn!(addr = %peer.addr, "TCP connect failed");
                                let _ = cmd.send(Cmd::TcpClosed(peer.addr));
                            }
                        }
                    });
                }
            },
        }
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

async fn udp_recv_loop(sock: Arc<UdpSocket>, tx: mpsc::UnboundedSender<Cmd>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable surfaces as an error on some systems: keep going.
                debug!("udp recv: {e}");
                continue;
            }
        };
        let data = &buf[..n];
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            continue; // keep-alive (CRLF)
        }
        let peer = Peer {
            transport: Transport::Udp,
            addr: from,
        };
        match parse_message(data) {
            Ok(msg) => {
                if tx.send(Cmd::Incoming(peer, msg)).is_err() {
                    return;
                }
            }
            Err(e) => {
                debug!(%from, "malformed SIP datagram: {e}");
                if let Some(resp) = reject_response(data, &e) {
                    let _ = sock.try_send_to(&resp.to_bytes(), from);
                }
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, cmd: mpsc::UnboundedSender<Cmd>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let (wtx, wrx) = mpsc::unbounded_channel();
                let _ = cmd.send(Cmd::TcpConnected(addr, wtx.clone()));
                tokio::spawn(run_tcp(stream, addr, cmd.clone(), wtx, wrx));
            }
            Err(e) => {
                warn!("TCP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One TCP connection: a reader that frames messages by Content-Length and a
/// writer fed by the driver. Idle connections close after 10 minutes.
async fn run_tcp(
    stream: TcpStream,
    addr: SocketAddr,
    cmd: mpsc::UnboundedSender<Cmd>,
    wtx: mpsc::UnboundedSender<Vec<u8>>,
    mut wrx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = wrx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let peer = Peer {
        transport: Transport::Tcp,
        addr,
    };
    let mut framer = StreamFramer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let n = match tokio::time::timeout(Duration::from_secs(600), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        while let Some(item) = framer.next() {
            match item {
                Ok(msg) => {
                    if cmd.send(Cmd::Incoming(peer, msg)).is_err() {
                        break 'conn;
                    }
                }
                Err(FrameError::Message(e, raw)) => {
                    if let Some(resp) = reject_response(&raw, &e) {
                        let _ = wtx.send(resp.to_bytes());
                    }
                }
                Err(e) => {
                    debug!(%addr, "closing TCP connection: {e}");
                    break 'conn;
                }
            }
        }
    }
    let _ = cmd.send(Cmd::TcpClosed(addr));
    drop(wtx);
    writer.abort();
}
