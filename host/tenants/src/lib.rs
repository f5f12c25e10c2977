//! plugboard-tenants
