//! Mail subject templates: `{caller}`, `{caller_name}`, `{mailbox}`,
//! `{mailbox_name}`, `{duration}` (m:ss), `{duration_s}`, `{date}`
//! (YYYY-MM-DD), `{time}` (HH:MM), `{urgent}` (`URGENT ` or nothing).
//! Unknown placeholders stay as written.

/// The values a template can use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    pub caller: String,
    /// Empty when unknown: `{caller_name}` then renders the caller's number.
    pub caller_name: String,
    pub mailbox: String,
    /// Empty when unknown: `{mailbox_name}` then renders the mailbox number.
    pub mailbox_name: String,
    pub duration_ms: u32,
    pub date: String,
    pub time: String,
    pub urgent: bool,
}

/// `m:ss`.
pub fn duration(ms: u32) -> String {
    let s = ms.div_ceil(1000);
    format!("{}:{:02}", s / 60, s % 60)
}

/// Renders `template` with `vars`; the result is one line (no CR/LF).
pub fn render(template: &str, vars: &Vars) -> String {
    let caller = if vars.caller.is_empty() {
        "unknown"
    } else {
        &vars.caller
    };
    let or = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        let value = match name {
            "caller" => Some(caller.to_string()),
            "caller_name" => Some(or(&vars.caller_name, caller)),
            "mailbox" => Some(vars.mailbox.clone()),
            "mailbox_name" => Some(or(&vars.mailbox_name, &vars.mailbox)),
            "duration" => Some(duration(vars.duration_ms)),
            "duration_s" => Some(vars.duration_ms.div_ceil(1000).to_string()),
            "date" => Some(vars.date.clone()),
            "time" => Some(vars.time.clone()),
            "urgent" => Some(if vars.urgent {
                "URGENT ".into()
            } else {
                String::new()
            }),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            caller: "+15551234".into(),
            caller_name: "Bob".into(),
            mailbox: "101".into(),
            mailbox_name: "Alice".into(),
            duration_ms: 65_200,
            date: "2025-03-04".into(),
            time: "10:42".into(),
            urgent: false,
        }
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            render(
                "{urgent}Voicemail Message ({caller} > {mailbox_name}) From:{caller_name} {duration} {date} {time} [{mailbox}]",
                &vars()
            ),
            "Voicemail Message (+15551234 > Alice) From:Bob 1:06 2025-03-04 10:42 [101]"
        );
    }

    #[test]
    fn fallbacks_unknown_and_injection() {
        let mut v = vars();
        v.caller_name.clear();
        v.mailbox_name.clear();
        v.urgent = true;
        v.caller = "a\r\nBcc: x".into();
        assert_eq!(
            render(
                "{urgent}{caller_name}|{mailbox_name}|{nope}|{duration_s}|{open",
                &v
            ),
            "URGENT a  Bcc: x|101|{nope}|66|{open"
        );
        v.caller.clear();
        assert_eq!(render("{caller}", &v), "unknown");
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(1), "0:01");
    }
}
