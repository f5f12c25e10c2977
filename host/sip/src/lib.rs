//! plugboard-sip: the SIP protocol core of plugboard, without I/O.
//!
//! Parsing and printing of messages (RFC 3261 section 7 and 25), framing of
//! stream transports, request validation (RFC 4475's expectations), digest
//! authentication (RFC 2617, RFC 8760) and the transaction layer (RFC 3261
//! section 17). Nothing here opens a socket or reads a clock: the transaction
//! layer takes `Instant`s and bytes as input and hands back bytes to send and
//! the next time it wants to be woken (the shape of quinn-proto and str0m).
//! The tokio driver lives in `plugboard-calls`.

pub mod auth;
pub mod check;
pub mod framing;
pub mod message;
pub mod parse;
pub mod redirect;
pub mod transaction;
pub mod util;

pub use message::{
    CSeq, Contacts, Headers, Message, Method, NameAddr, Request, Response, Uri, Via,
};
