//! plugboard plugin distribution: signing keys, packages, the operator's
//! trust store and the OCI registry client.

pub mod keys;
