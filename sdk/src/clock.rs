//! The tenant's clock. Tests may run the host on a controlled clock, so
//! plugins take time from here, never from WASI or `std::time`.

use crate::__bindings::plugboard::pbx::clock as raw;

/// An instant in the tenant's time zone (the WIT `local-time`).
pub use raw::LocalTime;

/// Now, in the tenant's time zone.
pub fn now() -> LocalTime {
    raw::now()
}

/// `unix_ms` (milliseconds since the Unix epoch) in the tenant's time zone.
pub fn to_local(unix_ms: u64) -> LocalTime {
    raw::to_local(unix_ms)
}

impl LocalTime {
    /// Minutes since local midnight (0..1440).
    pub fn minute_of_day(&self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }

    /// `YYYY-MM-DD`.
    pub fn date_string(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `HH:MM` (24 h).
    pub fn time_string(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_helpers() {
        let t = LocalTime {
            unix_ms: 0,
            year: 2025,
            month: 3,
            day: 4,
            hour: 9,
            minute: 5,
            second: 0,
            weekday: 2,
            utc_offset_minutes: 60,
            zone: "Europe/Berlin".into(),
        };
        assert_eq!(t.minute_of_day(), 545);
        assert_eq!(t.date_string(), "2025-03-04");
        assert_eq!(t.time_string(), "09:05");
    }
}
