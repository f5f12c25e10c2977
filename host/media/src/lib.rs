//! plugboard-media
