//! plugboard licences (being written).
