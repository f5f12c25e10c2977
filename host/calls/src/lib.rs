//! plugboard-calls
