//! Office hours: `mon-fri 08:00-12:00,13:00-17:00; sat 09:00-12:00`.
//!
//! Rules are separated by `;`. Each rule is a day list (`mon`, `mon-fri`,
//! `mon,wed,fri`, `sat-sun`) and one or more time ranges `HH:MM-HH:MM`
//! (end exclusive, `24:00` allowed, no range across midnight). A day that no
//! rule names is closed all day. An empty value means no office-hours
//! profile (always open).

/// A parsed weekly schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    /// Per weekday (index 0 = Monday), the open ranges in minutes of the day.
    days: [Vec<(u32, u32)>; 7],
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<usize, String> {
    let s = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| s.starts_with(d) && s.len() >= 3)
        .ok_or_else(|| format!("unknown day {s:?} (mon ... sun)"))
}

fn minutes(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("time {s:?}: expected HH:MM"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("time {s:?}: bad hour"))?;
    let m: u32 = m
        .trim()
        .parse()
        .map_err(|_| format!("time {s:?}: bad minute"))?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("time {s:?} is out of range"));
    }
    Ok(h * 60 + m)
}

impl OfficeHours {
    /// Parses a schedule; `Ok(None)` for an empty value.
    pub fn parse(text: &str) -> Result<Option<OfficeHours>, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let mut days: [Vec<(u32, u32)>; 7] = Default::default();
        for rule in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (day_spec, times) = rule
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("rule {rule:?}: expected DAYS HH:MM-HH:MM"))?;
            let mut selected = [false; 7];
            for part in day_spec.split(',').filter(|p| !p.is_empty()) {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        let mut d = a;
                        loop {
                            selected[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => selected[day(part)?] = true,
                }
            }
            let mut ranges = Vec::new();
            for r in times
                .split([',', ' '])
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                let (a, b) = r
                    .split_once('-')
                    .ok_or_else(|| format!("range {r:?}: expected HH:MM-HH:MM"))?;
                let (a, b) = (minutes(a)?, minutes(b)?);
                if a >= b {
                    return Err(format!("range {r:?}: the end must be after the start"));
                }
                ranges.push((a, b));
            }
            if ranges.is_empty() {
                return Err(format!("rule {rule:?}: no time range"));
            }
            for (d, on) in selected.iter().enumerate() {
                if *on {
                    days[d].extend(ranges.iter().copied());
                }
            }
        }
        Ok(Some(OfficeHours { days }))
    }

    /// Whether the office is open on ISO `weekday` (1 = Monday ... 7 = Sunday)
    /// at `minute_of_day` (0..1440).
    pub fn is_open(&self, weekday: u8, minute_of_day: u32) -> bool {
        let Some(ranges) = (weekday as usize)
            .checked_sub(1)
            .and_then(|d| self.days.get(d))
        else {
            return true;
        };
        ranges
            .iter()
            .any(|&(a, b)| minute_of_day >= a && minute_of_day < b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_schedule_with_a_break() {
        let h = OfficeHours::parse("mon-fri 08:00-12:00,13:00-17:00; sat 09:00-12:00")
            .unwrap()
            .unwrap();
        // Tuesday 10:00 open, 12:30 break, 18:00 closed; Saturday 10:00 open; Sunday closed.
        assert!(h.is_open(2, 600));
        assert!(!h.is_open(2, 750));
        assert!(!h.is_open(2, 1080));
        assert!(h.is_open(6, 600));
        assert!(!h.is_open(7, 600));
        assert!(h.is_open(1, 480));
        assert!(!h.is_open(5, 1020));
    }

    #[test]
    fn lists_wrapping_ranges_and_errors() {
        let h = OfficeHours::parse("sat-mon 10:00-11:00; wed,fri 00:00-24:00")
            .unwrap()
            .unwrap();
        assert!(h.is_open(6, 630) && h.is_open(7, 630) && h.is_open(1, 630));
        assert!(!h.is_open(2, 630));
        assert!(h.is_open(3, 1439) && h.is_open(5, 0));
        assert_eq!(OfficeHours::parse("  ").unwrap(), None);
        assert!(OfficeHours::parse("mon 17:00-08:00").is_err());
        assert!(OfficeHours::parse("xyz 08:00-09:00").is_err());
        assert!(OfficeHours::parse("mon").is_err());
        assert!(OfficeHours::parse("mon 25:00-26:00").is_err());
    }
}
