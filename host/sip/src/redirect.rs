//! Who a call was redirected from, and why, as a peer PBX says it:
//! `Diversion` (RFC 5806) or `History-Info` (RFC 7044 with the RFC 4458
//! `cause` URI parameter). plugboard uses it to act as the voicemail server
//! of another PBX: the mailbox is the number the call was diverted *from*,
//! the greeting follows the reason.
//!
//! - `Diversion`: the top-most entry is the most recent diversion, so its
//!   URI is the party whose mailbox the call is for; `reason` is one of the
//!   RFC 5806 names (`user-busy`, `no-answer`, `unconditional`,
//!   `unavailable`, `deflection`, `time-of-day`, `do-not-disturb`,
//!   `follow-me`, `out-of-service`, `away`, `unknown`).
//! - `History-Info`: entries sorted by `index`; the last entry whose URI
//!   carries `cause=` (RFC 4458: the target after a retarget) names the
//!   reason, and the entry before it the diverting party. Without `cause`,
//!   a `Reason: SIP;cause=NNN` escaped in the previous entry's URI headers
//!   is used.

use crate::message::{Headers, Uri, find_param};
use crate::parse::{parse_name_addr, split_list};

/// A redirection read from the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// The diverting party's user part (a number), unescaped.
    pub original: String,
    /// RFC 5806 reason name.
    pub reason: String,
    /// `diversion` or `history-info`.
    pub source: &'static str,
}

/// The redirection in `headers`: `Diversion` first, then `History-Info`.
pub fn redirection(headers: &Headers) -> Option<Redirection> {
    diversion(headers).or_else(|| history_info(headers))
}

fn diversion(headers: &Headers) -> Option<Redirection> {
    let first = headers
        .get_all("Diversion")
        .flat_map(split_list)
        .find_map(|v| parse_name_addr(v).ok())?;
    let original = user_of(&first.uri)?;
    let reason = find_param(&first.params, "reason")
        .flatten()
        .map(|r| r.trim_matches('"').to_ascii_lowercase())
        .unwrap_or_else(|| "unknown".into());
    Some(Redirection {
        original,
        reason,
        source: "diversion",
    })
}

fn history_info(headers: &Headers) -> Option<Redirection> {
    let mut entries: Vec<(Vec<u32>, Uri)> = headers
        .get_all("History-Info")
        .flat_map(split_list)
        .filter_map(|v| parse_name_addr(v).ok())
        .map(|na| {
            let index = find_param(&na.params, "index")
                .flatten()
                .map(|i| i.split('.').filter_map(|p| p.parse().ok()).collect())
                .unwrap_or_default();
            (index, na.uri)
        })
        .collect();
    if entries.len() < 2 {
        return None;
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let pos = (1..entries.len()).rev().find(|&i| {
        cause_of(&entries[i].1).is_some() || reason_header(&entries[i - 1].1).is_some()
    })?;
    let cause = cause_of(&entries[pos].1).or_else(|| reason_header(&entries[pos - 1].1))?;
    Some(Redirection {
        original: user_of(&entries[pos - 1].1)?,
        reason: reason_for_cause(cause).into(),
        source: "history-info",
    })
}

fn user_of(uri: &Uri) -> Option<String> {
    uri.user_unescaped().filter(|u| !u.is_empty())
}

fn cause_of(uri: &Uri) -> Option<u16> {
    uri.param("cause").flatten().and_then(|c| c.parse().ok())
}

/// `Reason=SIP%3Bcause%3D486` in the URI headers part.
fn reason_header(uri: &Uri) -> Option<u16> {
    let headers = uri.headers.as_deref()?;
    headers.split('&').find_map(|h| {
        let (name, value) = h.split_once('=')?;
        if !name.eq_ignore_ascii_case("reason") {
            return None;
        }
        let value = crate::message::unescape(value);
        let cause = value
            .split(';')
            .find_map(|p| p.trim().strip_prefix("cause="))?;
        cause.trim().parse().ok()
    })
}

/// RFC 4458 section 3: the cause codes of a voicemail retarget.
fn reason_for_cause(cause: u16) -> &'static str {
    match cause {
        486 | 600 => "user-busy",
        408 => "no-answer",
        302 => "unconditional",
        480 | 503 => "unavailable",
        487 => "deflection",
        404 => "unknown",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in list {
            h.push(n, *v);
        }
        h
    }

    #[test]
    fn diversion_top_most_entry_is_the_mailbox() {
        let h = headers(&[(
            "Diversion",
            "<sip:+4981424799123@pbx.example;user=phone>;reason=user-busy;counter=1, \
             <sip:100@pbx.example>;reason=unconditional",
        )]);
        assert_eq!(
            redirection(&h),
            Some(Redirection {
                original: "+4981424799123".into(),
                reason: "user-busy".into(),
                source: "diversion"
            })
        );
        let h = headers(&[("Diversion", "<tel:+4930123>;reason=\"no-answer\"")]);
        let r = redirection(&h).unwrap();
        assert_eq!(
            (r.original.as_str(), r.reason.as_str()),
            ("+4930123", "no-answer")
        );
        let h = headers(&[("Diversion", "<sip:200@pbx.example>")]);
        assert_eq!(redirection(&h).unwrap().reason, "unknown");
    }

    #[test]
    fn history_info_uses_the_rfc_4458_cause() {
        let h = headers(&[
            ("History-Info", "<sip:123@pbx.example>;index=1"),
            (
                "History-Info",
                "<sip:vm@plugboard.example;cause=408>;index=1.1",
            ),
        ]);
        assert_eq!(
            redirection(&h),
            Some(Redirection {
                original: "123".into(),
                reason: "no-answer".into(),
                source: "history-info"
            })
        );
        // Out of order, and the reason as an escaped header of the entry before.
        let h = headers(&[(
            "History-Info",
            "<sip:vm@x>;index=1.1, <sip:456@x?Reason=SIP%3Bcause%3D486>;index=1",
        )]);
        let r = redirection(&h).unwrap();
        assert_eq!(
            (r.original.as_str(), r.reason.as_str()),
            ("456", "user-busy")
        );
    }

    #[test]
    fn no_redirection_without_the_headers_or_a_cause() {
        assert_eq!(redirection(&Headers::new()), None);
        let h = headers(&[("History-Info", "<sip:1@x>;index=1, <sip:2@x>;index=1.1")]);
        assert_eq!(redirection(&h), None);
        let h = headers(&[("Diversion", "not a uri at all <")]);
        assert_eq!(redirection(&h), None);
    }
}
