//! plugboard-plugins
