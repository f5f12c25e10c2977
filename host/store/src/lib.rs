//! plugboard-store
