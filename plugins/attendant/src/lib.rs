//! plugboard-attendant
