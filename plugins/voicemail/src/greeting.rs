//! Which greeting a caller hears.

/// The greetings an owner can record (kv `mb/<n>/greeting/<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GreetingKind {
    /// The default (unconditional forward, unavailable, direct deposit).
    Unavailable,
    /// The owner is on the phone (`user-busy`).
    Busy,
    /// Nobody answered (`no-answer`).
    NoAnswer,
    /// Vacation / temporary: overrides every other greeting while set.
    Temporary,
    /// Outside office hours.
    Closed,
    /// The owner's recorded name (used in stock greetings).
    Name,
}

impl GreetingKind {
    pub const ALL: [GreetingKind; 6] = [
        GreetingKind::Unavailable,
        GreetingKind::Busy,
        GreetingKind::NoAnswer,
        GreetingKind::Temporary,
        GreetingKind::Closed,
        GreetingKind::Name,
    ];

    /// Its name in kv keys.
    pub fn key(self) -> &'static str {
        match self {
            GreetingKind::Unavailable => "unavailable",
            GreetingKind::Busy => "busy",
            GreetingKind::NoAnswer => "no-answer",
            GreetingKind::Temporary => "temporary",
            GreetingKind::Closed => "closed",
            GreetingKind::Name => "name",
        }
    }
}

/// Why the call came to voicemail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Busy,
    NoAnswer,
    /// Anything else: unconditional, unavailable, deflection, unknown, none.
    Other,
}

impl Reason {
    /// From the RFC 5806 reason names (`user-busy`, `no-answer`, ...).
    pub fn from_redirect(reason: Option<&str>) -> Reason {
        match reason.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
            Some("user-busy") | Some("busy") => Reason::Busy,
            Some("no-answer") | Some("noanswer") => Reason::NoAnswer,
            _ => Reason::Other,
        }
    }
}

/// What to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// The owner's recording of this kind.
    Recorded(GreetingKind),
    /// Stock `busy` prompt, after the mailbox's name or number.
    StockBusy,
    /// Stock `not-available` prompt, after the mailbox's name or number.
    StockUnavailable,
}

/// Chooses the greeting: the temporary greeting overrides everything; outside
/// office hours the closed greeting (when recorded); then the greeting for
/// the reason, falling back to the unavailable greeting (no-answer) or to the
/// stock prompt for the reason.
pub fn choose(reason: Reason, open: bool, recorded: impl Fn(GreetingKind) -> bool) -> Greeting {
    if recorded(GreetingKind::Temporary) {
        return Greeting::Recorded(GreetingKind::Temporary);
    }
    if !open && recorded(GreetingKind::Closed) {
        return Greeting::Recorded(GreetingKind::Closed);
    }
    match reason {
        Reason::Busy if recorded(GreetingKind::Busy) => Greeting::Recorded(GreetingKind::Busy),
        Reason::Busy => Greeting::StockBusy,
        Reason::NoAnswer if recorded(GreetingKind::NoAnswer) => {
            Greeting::Recorded(GreetingKind::NoAnswer)
        }
        _ if recorded(GreetingKind::Unavailable) => Greeting::Recorded(GreetingKind::Unavailable),
        _ => Greeting::StockUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GreetingKind as K;

    fn has(kinds: &'static [GreetingKind]) -> impl Fn(GreetingKind) -> bool {
        move |k| kinds.contains(&k)
    }

    #[test]
    fn by_reason() {
        let all = &[K::Unavailable, K::Busy, K::NoAnswer];
        assert_eq!(
            choose(Reason::Busy, true, has(all)),
            Greeting::Recorded(K::Busy)
        );
        assert_eq!(
            choose(Reason::NoAnswer, true, has(all)),
            Greeting::Recorded(K::NoAnswer)
        );
        assert_eq!(
            choose(Reason::Other, true, has(all)),
            Greeting::Recorded(K::Unavailable)
        );
    }

    #[test]
    fn fallbacks() {
        assert_eq!(choose(Reason::Busy, true, has(&[])), Greeting::StockBusy);
        assert_eq!(
            choose(Reason::NoAnswer, true, has(&[])),
            Greeting::StockUnavailable
        );
        assert_eq!(
            choose(Reason::NoAnswer, true, has(&[K::Unavailable])),
            Greeting::Recorded(K::Unavailable)
        );
        assert_eq!(
            choose(Reason::Busy, true, has(&[K::Unavailable])),
            Greeting::StockBusy
        );
    }

    #[test]
    fn temporary_overrides_and_office_hours() {
        let with_temp = &[K::Temporary, K::Busy, K::Closed];
        assert_eq!(
            choose(Reason::Busy, false, has(with_temp)),
            Greeting::Recorded(K::Temporary)
        );
        let closed = &[K::Busy, K::Closed];
        assert_eq!(
            choose(Reason::Busy, false, has(closed)),
            Greeting::Recorded(K::Closed)
        );
        assert_eq!(
            choose(Reason::Busy, true, has(closed)),
            Greeting::Recorded(K::Busy)
        );
        // Closed without a closed greeting: the usual choice.
        assert_eq!(
            choose(Reason::Busy, false, has(&[K::Busy])),
            Greeting::Recorded(K::Busy)
        );
    }

    #[test]
    fn reasons_from_redirect_names() {
        assert_eq!(Reason::from_redirect(Some("user-busy")), Reason::Busy);
        assert_eq!(Reason::from_redirect(Some("no-answer")), Reason::NoAnswer);
        assert_eq!(Reason::from_redirect(Some("unconditional")), Reason::Other);
        assert_eq!(Reason::from_redirect(None), Reason::Other);
    }
}
