//! plugboard-calls: the call layer of the plugboard host.
//!
//! It drives the sans-IO SIP core over real sockets ([`transport`]), acts as
//! registrar ([`registrar`]) and as a B2BUA between registered users
//! ([`call`]), and runs WebAssembly call-flow plugins on calls the dial plan
//! routes to them ([`plugin_call`]). [`Server::start`] wires it all up.

pub mod admin;
pub mod call;
pub mod cdr;
pub mod dialog;
pub mod digest;
pub mod events;
pub mod faults;
pub mod http_out;
pub mod licensing;
pub mod mwi;
pub mod plugin_call;
pub mod prompts;
pub mod registrar;
pub mod reply;
pub mod screening;
pub mod server;
pub mod services;
pub mod tenants;
pub mod transport;

pub use server::{Core, Server};
