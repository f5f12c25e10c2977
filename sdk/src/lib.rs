//! plugboard-sdk
