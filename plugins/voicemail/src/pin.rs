//! PIN policy: which PIN applies, what a new PIN must look like, and the
//! failure counter with its lockout.

/// Limits from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    pub min_len: usize,
    pub max_len: usize,
    /// Wrong PINs in a row that lock the mailbox.
    pub max_failures: u32,
    /// How long a lock lasts (0 = the counter only resets; no lock).
    pub lockout_ms: u64,
}

/// Why a new PIN is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProblem {
    TooShort,
    TooLong,
    NotDigits,
}

impl PinPolicy {
    /// Checks a PIN the owner wants to set.
    pub fn check_new(&self, pin: &str) -> Result<(), PinProblem> {
        if !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinProblem::NotDigits);
        }
        if pin.len() < self.min_len {
            return Err(PinProblem::TooShort);
        }
        if pin.len() > self.max_len {
            return Err(PinProblem::TooLong);
        }
        Ok(())
    }
}

/// Where the PIN in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinSource {
    /// Set by the owner by phone (or generated for the welcome mail).
    Owner,
    /// `mailboxes.<n>.pin`.
    Config,
    /// `default_pin`: shared, so the owner is asked to change it at login.
    Default,
}

/// The PIN the owner set, stored with the configured PIN it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPin {
    pub pin: String,
    /// `mailboxes.<n>.pin` when the owner set it; a different configured
    /// PIN now means the administrator reset it.
    pub base: String,
}

impl StoredPin {
    pub fn encode(&self) -> String {
        format!("pin={}\nbase={}\n", self.pin, self.base)
    }

    pub fn decode(text: &str) -> Option<StoredPin> {
        let mut pin = None;
        let mut base = String::new();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pin", v)) => pin = Some(v.to_string()),
                Some(("base", v)) => base = v.to_string(),
                _ => {}
            }
        }
        Some(StoredPin { pin: pin?, base })
    }
}

/// The PIN in force: the owner's (unless the administrator configured a
/// different PIN since), else the configured one, else `default_pin`.
pub fn effective_pin(
    configured: Option<&str>,
    default_pin: Option<&str>,
    stored: Option<&StoredPin>,
) -> Option<(String, PinSource)> {
    if let Some(s) = stored
        && s.base == configured.unwrap_or("")
        && !s.pin.is_empty()
    {
        return Some((s.pin.clone(), PinSource::Owner));
    }
    if let Some(p) = configured.filter(|p| !p.is_empty()) {
        return Some((p.to_string(), PinSource::Config));
    }
    default_pin
        .filter(|p| !p.is_empty())
        .map(|p| (p.to_string(), PinSource::Default))
}

/// A PIN of `len` digits from `seed` (for the welcome mail of a mailbox
/// without any PIN). Not cryptographic: the seed mixes the call id, the
/// time and the mailbox.
pub fn generate_pin(mut seed: u64, len: usize) -> String {
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        // splitmix64
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push(char::from(b'0' + (z % 10) as u8));
    }
    out
}

/// Wrong-PIN counter and lock of one mailbox (kv `mb/<n>/lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lock {
    pub failures: u32,
    /// Unix ms until which every login is refused (0 = not locked).
    pub locked_until_ms: u64,
}

impl Lock {
    pub fn encode(&self) -> String {
        format!(
            "failures={}\nlocked_until={}\n",
            self.failures, self.locked_until_ms
        )
    }

    pub fn decode(text: &str) -> Lock {
        let mut l = Lock::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("failures", v)) => l.failures = v.parse().unwrap_or(0),
                Some(("locked_until", v)) => l.locked_until_ms = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        l
    }

    /// The lock as it stands at `now`: an expired lock is cleared.
    pub fn at(self, now_ms: u64) -> Lock {
        if self.locked_until_ms != 0 && now_ms >= self.locked_until_ms {
            Lock::default()
        } else {
            self
        }
    }

    /// True while logins are refused.
    pub fn is_locked(&self, now_ms: u64) -> bool {
        self.locked_until_ms != 0 && now_ms < self.locked_until_ms
    }

    /// Counts a wrong PIN; returns true when this failure locks the mailbox.
    pub fn fail(&mut self, now_ms: u64, policy: &PinPolicy) -> bool {
        *self = self.at(now_ms);
        self.failures += 1;
        if self.failures >= policy.max_failures {
            self.failures = 0;
            if policy.lockout_ms > 0 {
                self.locked_until_ms = now_ms + policy.lockout_ms;
                return true;
            }
        }
        false
    }
}

/// Whether `entered` opens the mailbox: the lock is checked first, so a
/// correct PIN is refused while locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Ok,
    Wrong,
    /// Wrong, and the mailbox is now locked.
    LockedNow,
    /// Refused: the mailbox is locked.
    Locked,
}

/// One login attempt; updates `lock` (the caller stores it).
pub fn attempt(
    lock: &mut Lock,
    pin: Option<&str>,
    entered: &str,
    now_ms: u64,
    policy: &PinPolicy,
) -> Attempt {
    *lock = lock.at(now_ms);
    if lock.is_locked(now_ms) {
        return Attempt::Locked;
    }
    if pin.is_some_and(|p| !p.is_empty() && p == entered) {
        *lock = Lock::default();
        return Attempt::Ok;
    }
    if lock.fail(now_ms, policy) {
        Attempt::LockedNow
    } else {
        Attempt::Wrong
    }
}

/// Caller ids compared loosely: only digits and a leading `+`.
pub fn same_number(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.trim()
            .chars()
            .enumerate()
            .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
            .map(|(_, c)| c)
            .collect()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PinPolicy = PinPolicy {
        min_len: 4,
        max_len: 8,
        max_failures: 3,
        lockout_ms: 60 * 60_000,
    };

    #[test]
    fn new_pin_policy() {
        assert_eq!(P.check_new("123"), Err(PinProblem::TooShort));
        assert_eq!(P.check_new("123456789"), Err(PinProblem::TooLong));
        assert_eq!(P.check_new("12a4"), Err(PinProblem::NotDigits));
        assert_eq!(P.check_new("1234"), Ok(()));
    }

    #[test]
    fn three_failures_lock_for_the_lockout_time() {
        let mut l = Lock::default();
        let t = 1_000_000;
        assert_eq!(attempt(&mut l, Some("4711"), "1", t, &P), Attempt::Wrong);
        assert_eq!(
            attempt(&mut l, Some("4711"), "2", t + 1, &P),
            Attempt::Wrong
        );
        assert_eq!(
            attempt(&mut l, Some("4711"), "3", t + 2, &P),
            Attempt::LockedNow
        );
        // The right PIN is refused for the hour.
        assert_eq!(
            attempt(&mut l, Some("4711"), "4711", t + 2 + 59 * 60_000, &P),
            Attempt::Locked
        );
        // And accepted after it.
        assert_eq!(
            attempt(&mut l, Some("4711"), "4711", t + 2 + 60 * 60_000, &P),
            Attempt::Ok
        );
        assert_eq!(l, Lock::default());
        // Round trip through kv text.
        let x = Lock {
            failures: 2,
            locked_until_ms: 99,
        };
        assert_eq!(Lock::decode(&x.encode()), x);
    }

    #[test]
    fn success_resets_the_counter() {
        let mut l = Lock::default();
        attempt(&mut l, Some("4711"), "0", 1, &P);
        attempt(&mut l, Some("4711"), "0", 2, &P);
        assert_eq!(attempt(&mut l, Some("4711"), "4711", 3, &P), Attempt::Ok);
        assert_eq!(attempt(&mut l, Some("4711"), "0", 4, &P), Attempt::Wrong);
        assert_eq!(l.failures, 1);
        // No PIN at all never opens.
        assert_eq!(attempt(&mut l, None, "", 5, &P), Attempt::Wrong);
    }

    #[test]
    fn which_pin_applies() {
        let owner = StoredPin {
            pin: "9999".into(),
            base: "1234".into(),
        };
        assert_eq!(
            effective_pin(Some("1234"), Some("0000"), Some(&owner)),
            Some(("9999".into(), PinSource::Owner))
        );
        // The administrator configured a new PIN: it wins over the owner's.
        assert_eq!(
            effective_pin(Some("5555"), None, Some(&owner)),
            Some(("5555".into(), PinSource::Config))
        );
        assert_eq!(
            effective_pin(None, Some("0000"), None),
            Some(("0000".into(), PinSource::Default))
        );
        let generated = StoredPin {
            pin: "2468".into(),
            base: String::new(),
        };
        assert_eq!(
            effective_pin(None, Some("0000"), Some(&generated)),
            Some(("2468".into(), PinSource::Owner))
        );
        assert_eq!(effective_pin(None, None, None), None);
        assert_eq!(StoredPin::decode(&owner.encode()), Some(owner));
    }

    #[test]
    fn generated_pins_have_the_length() {
        let a = generate_pin(1, 6);
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(generate_pin(1, 6), generate_pin(2, 6));
    }

    #[test]
    fn numbers_compare_loosely() {
        assert!(same_number("+1 555-1234", "+15551234"));
        assert!(!same_number("+15551234", "15551234"));
        assert!(!same_number("", ""));
    }
}
