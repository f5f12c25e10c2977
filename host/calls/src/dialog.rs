//! One side of a call as a SIP dialog (RFC 3261 section 12): the state needed
//! to build in-dialog requests (BYE, re-INVITE, ACK for a 2xx).

use std::net::SocketAddr;

use plugboard_sip::transaction::{Peer, Transport};
use plugboard_sip::util::new_branch;
use plugboard_sip::{Method, NameAddr, Request, Uri};

/// Our side and the remote side of one dialog.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    /// Our address of record, with our tag.
    pub local: NameAddr,
    /// The remote address of record, with its tag.
    pub remote: NameAddr,
    /// Where in-dialog requests go (the remote Contact).
    pub remote_target: Uri,
    /// Our last CSeq number.
    pub local_cseq: u32,
    /// The transport address to send to.
    pub peer: Peer,
    /// Our local SIP address on that transport (Via sent-by, Contact).
    pub local_addr: SocketAddr,
}

/// A Via header value for a new client transaction from `local` over `transport`.
pub fn new_via(transport: Transport, local: SocketAddr) -> String {
    let t = match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    format!("SIP/2.0/{t} {local};branch={};rport", new_branch())
}

/// Our Contact header value.
pub fn contact(transport: Transport, local: SocketAddr) -> String {
    match transport {
        Transport::Udp => format!("<sip:plugboard@{local}>"),
        Transport::Tcp => format!("<sip:plugboard@{local};transport=tcp>"),
    }
}

impl Dialog {
    /// A new in-dialog request (CSeq incremented).
    pub fn request(&mut self, method: Method) -> Request {
        self.local_cseq += 1;
        let seq = self.local_cseq;
        self.build(method, seq)
    }

    /// The ACK for a 2xx to our INVITE with CSeq number `seq` (RFC 3261 13.2.2.4).
    pub fn ack(&self, seq: u32) -> Request {
        self.build(Method::Ack, seq)
    }

    fn build(&self, method: Method, seq: u32) -> Request {
        let mut r = Request::new(method.clone(), self.remote_target.clone());
        r.headers
            .push("Via", new_via(self.peer.transport, self.local_addr));
        r.headers.push("Max-Forwards", "70");
        r.headers.push("From", self.local.to_string());
        r.headers.push("To", self.remote.to_string());
        r.headers.push("Call-ID", self.call_id.clone());
        r.headers.push("CSeq", format!("{seq} {method}"));
        r.headers
            .push("Contact", contact(self.peer.transport, self.local_addr));
        r
    }
}
