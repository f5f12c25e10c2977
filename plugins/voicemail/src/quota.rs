//! Per-mailbox recording quotas: how many messages and how many recorded
//! minutes a mailbox may hold. Messages in state *deleted* do not count.

use crate::store::{Message, State};

/// The limits of one mailbox (`max_messages`, `max_minutes`, or the
/// mailbox's own `mailboxes.<n>.max_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// At least 1.
    pub max_messages: u32,
    /// Total recorded minutes; 0 = no limit.
    pub max_minutes: u32,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_messages: DEFAULT_MAX_MESSAGES,
            max_minutes: 0,
        }
    }
}

/// The default `max_messages`.
pub const DEFAULT_MAX_MESSAGES: u32 = 100;

/// What a mailbox holds, deleted messages left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub messages: u32,
    /// The sum of the messages' durations.
    pub recorded_ms: u64,
}

/// Why a mailbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `max_messages` reached.
    Messages,
    /// `max_minutes` of recordings reached.
    Minutes,
}

impl Full {
    pub fn name(self) -> &'static str {
        match self {
            Full::Messages => "max_messages",
            Full::Minutes => "max_minutes",
        }
    }
}

/// The usage of `messages` (every state but *deleted*).
pub fn usage(messages: &[Message]) -> Usage {
    let mut u = Usage::default();
    for m in messages.iter().filter(|m| m.state != State::Deleted) {
        u.messages = u.messages.saturating_add(1);
        u.recorded_ms = u.recorded_ms.saturating_add(u64::from(m.duration_ms));
    }
    u
}

impl Quota {
    fn max_ms(&self) -> Option<u64> {
        (self.max_minutes > 0).then(|| u64::from(self.max_minutes) * 60_000)
    }

    /// Whether a mailbox with `u` takes no more messages (the count is
    /// checked first).
    pub fn full(&self, u: &Usage) -> Option<Full> {
        if u.messages >= self.max_messages.max(1) {
            return Some(Full::Messages);
        }
        match self.max_ms() {
            Some(max) if u.recorded_ms >= max => Some(Full::Minutes),
            _ => None,
        }
    }

    /// Recording time left before `max_minutes` (None: no limit).
    pub fn remaining_ms(&self, u: &Usage) -> Option<u64> {
        self.max_ms().map(|max| max.saturating_sub(u.recorded_ms))
    }

    /// The longest recording a caller may leave in a mailbox with `u`:
    /// `max_length_s`, cut to the time left before `max_minutes`, but never
    /// below `min_length_s` (a message that may be kept at all).
    pub fn record_max_ms(&self, u: &Usage, min_length_s: u32, max_length_s: u32) -> u32 {
        let max = u64::from(max_length_s) * 1000;
        let capped = self.remaining_ms(u).map_or(max, |left| left.min(max));
        let floor = u64::from(min_length_s) * 1000;
        u32::try_from(capped.max(floor)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u32 = 60_000;

    fn msg(id: &str, state: State, duration_ms: u32) -> Message {
        Message {
            id: id.into(),
            caller: "102".into(),
            caller_name: String::new(),
            time_ms: 0,
            duration_ms,
            recordings: vec![format!("r{id}")],
            state,
            state_ms: 0,
            urgent: false,
            forwarded_by: String::new(),
        }
    }

    fn q(max_messages: u32, max_minutes: u32) -> Quota {
        Quota {
            max_messages,
            max_minutes,
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(q(100, 0), Quota::default());
        assert_eq!(Quota::default().full(&Usage::default()), None);
    }

    #[test]
    fn full_by_count() {
        let msgs = [
            msg("1", State::New, 1000),
            msg("2", State::Old, 1000),
            msg("3", State::Saved, 1000),
        ];
        let u = usage(&msgs);
        assert_eq!(
            u,
            Usage {
                messages: 3,
                recorded_ms: 3000
            }
        );
        assert_eq!(q(3, 0).full(&u), Some(Full::Messages));
        assert_eq!(q(2, 0).full(&u), Some(Full::Messages));
        assert_eq!(q(4, 0).full(&u), None);
        // The count wins when both are reached.
        assert_eq!(
            q(3, 1).full(&usage(&[msg("a", State::New, MIN)])),
            Some(Full::Minutes)
        );
        assert_eq!(
            q(1, 1).full(&usage(&[msg("a", State::New, MIN)])),
            Some(Full::Messages)
        );
    }

    #[test]
    fn full_by_minutes() {
        let msgs = [msg("1", State::New, 90_000), msg("2", State::Saved, 30_000)];
        let u = usage(&msgs);
        assert_eq!(u.recorded_ms, 120_000);
        assert_eq!(q(100, 2).full(&u), Some(Full::Minutes), "exactly the limit");
        assert_eq!(q(100, 1).full(&u), Some(Full::Minutes));
        assert_eq!(q(100, 3).full(&u), None);
        assert_eq!(q(100, 0).full(&u), None, "0 = no limit");
    }

    #[test]
    fn deleted_messages_do_not_count() {
        let msgs = [
            msg("1", State::New, MIN),
            msg("2", State::Deleted, 10 * MIN),
            msg("3", State::Deleted, 10 * MIN),
        ];
        let u = usage(&msgs);
        assert_eq!(
            u,
            Usage {
                messages: 1,
                recorded_ms: u64::from(MIN)
            }
        );
        assert_eq!(q(2, 2).full(&u), None);
        assert_eq!(q(1, 0).full(&u), Some(Full::Messages));
    }

    #[test]
    fn remaining_time_caps_the_recording() {
        let u = usage(&[msg("1", State::New, 4 * MIN + 30_000)]);
        // No minute limit: max_length_s.
        assert_eq!(q(100, 0).remaining_ms(&u), None);
        assert_eq!(q(100, 0).record_max_ms(&u, 2, 120), 120_000);
        // 30 s left of 5 minutes.
        assert_eq!(q(100, 5).remaining_ms(&u), Some(30_000));
        assert_eq!(q(100, 5).record_max_ms(&u, 2, 120), 30_000);
        // Plenty left: max_length_s still applies.
        assert_eq!(q(100, 60).record_max_ms(&u, 2, 120), 120_000);
        // Less left than min_length_s: min_length_s.
        let u = usage(&[msg("1", State::New, 5 * MIN - 1_000)]);
        assert_eq!(q(100, 5).record_max_ms(&u, 2, 120), 2_000);
        assert_eq!(q(100, 5).record_max_ms(&u, 0, 120), 1_000);
        // Over the limit (full): never 0 with min_length_s.
        let u = usage(&[msg("1", State::New, 6 * MIN)]);
        assert_eq!(q(100, 5).remaining_ms(&u), Some(0));
        assert_eq!(q(100, 5).record_max_ms(&u, 3, 120), 3_000);
    }
}
