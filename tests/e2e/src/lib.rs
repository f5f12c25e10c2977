//! plugboard-e2e
