//! Auto-disable of a plugin that keeps faulting in one tenant.
//!
//! After [`THRESHOLD`] faults in a row (traps, CPU or memory limits, failed
//! instantiations) of the same plugin in the same tenant, the plugin is
//! disabled for that tenant for a backoff period: calls routed to it get 503
//! with Retry-After instead of another broken instance. The backoff starts
//! at [`FIRST_BACKOFF`] and doubles each time the plugin faults again right
//! after being re-enabled, up to [`MAX_BACKOFF`]; a clean run resets it.
//! Results of runs that end while it is disabled (calls already in flight
//! when it tripped) are ignored: they neither extend nor reset the backoff.
//! Other tenants using the same plugin are not affected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Faults in a row that disable a plugin for a tenant.
pub const THRESHOLD: u32 = 3;
/// First disable period.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// Longest disable period.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Entry {
    in_a_row: u32,
    disabled_until: Option<Instant>,
    next_backoff: Option<Duration>,
}

/// Per (tenant, plugin) fault state.
#[derive(Default)]
pub struct FaultTracker {
    map: Mutex<HashMap<(String, String), Entry>>,
}

impl FaultTracker {
    /// `Err(remaining)` while the plugin is disabled for the tenant.
    pub fn check(&self, tenant: &str, plugin: &str, now: Instant) -> Result<(), Duration> {
        let map = self.map.lock().expect("faults lock");
        match map
            .get(&(tenant.to_string(), plugin.to_string()))
            .and_then(|e| e.disabled_until)
        {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a run's result; returns the backoff when this fault disabled the plugin.
    pub fn record(
        &self,
        tenant: &str,
        plugin: &str,
        faulted: bool,
        now: Instant,
    ) -> Option<Duration> {
        let mut map = self.map.lock().expect("faults lock");
        let e = map
            .entry((tenant.to_string(), plugin.to_string()))
            .or_default();
        if e.disabled_until.is_some_and(|until| until > now) {
            // Runs that were already in flight when it tripped: they say
            // nothing about the plugin after a re-enable.
            return None;
        }
        if !faulted {
            *e = Entry::default();
            return None;
        }
        e.in_a_row += 1;
        if e.in_a_row < THRESHOLD {
            return None;
        }
        let backoff = e.next_backoff.unwrap_or(FIRST_BACKOFF);
        e.disabled_until = Some(now + backoff);
        e.next_backoff = Some((backoff * 2).min(MAX_BACKOFF));
        // After the backoff one more fault disables it again (doubled).
        e.in_a_row = THRESHOLD - 1;
        Some(backoff)
    }

    /// Plugins disabled now: (tenant, plugin, remaining).
    pub fn disabled(&self, now: Instant) -> Vec<(String, String, Duration)> {
        let map = self.map.lock().expect("faults lock");
        map.iter()
            .filter_map(|((t, p), e)| match e.disabled_until {
                Some(u) if u > now => Some((t.clone(), p.clone(), u - now)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_faults_disable_with_doubling_backoff_and_success_resets() {
        let f = FaultTracker::default();
        let t0 = Instant::now();
        assert_eq!(f.record("a", "p", true, t0), None);
        assert_eq!(f.record("a", "p", true, t0), None);
        assert_eq!(f.record("a", "p", true, t0), Some(FIRST_BACKOFF));
        assert!(f.check("a", "p", t0).is_err());
        assert!(f.check("b", "p", t0).is_ok(), "other tenants unaffected");
        // Calls in flight when it tripped fault too: no escalation.
        for _ in 0..10 {
            assert_eq!(
                f.record("a", "p", true, t0 + Duration::from_millis(5)),
                None
            );
        }
        let later = t0 + FIRST_BACKOFF + Duration::from_millis(1);
        assert!(f.check("a", "p", later).is_ok());
        assert_eq!(f.record("a", "p", true, later), Some(FIRST_BACKOFF * 2));
        let later2 = later + FIRST_BACKOFF * 2 + Duration::from_millis(1);
        assert_eq!(f.record("a", "p", false, later2), None);
        assert_eq!(
            f.record("a", "p", true, later2),
            None,
            "reset by a clean run"
        );
    }
}
