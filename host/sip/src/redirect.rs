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
//!   reason. The diverting party is the entry its `mp` parameter names
//!   (RFC 7044 section 10.3), else its parent index (`1.2` for `1.2.1`),
//!   else the entry before it. Without `cause`, a `Reason: SIP;cause=NNN`
//!   escaped in the previous entry's URI headers is used.
//! - The RFC 4458 Request-URI form, `sip:vm@host;target=sip:123%40pbx;cause=486`,
//!   is read first by [`redirection_of`].

use crate::message::{Headers, Uri, find_param};
use crate::parse::{parse_name_addr, split_list};

/// A redirection read from the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// The diverting party's user part (a number), unescaped.
    pub original: String,
    /// RFC 5806 reason name.
    pub reason: String,
    /// `request-uri`, `diversion` or `history-info`.
    pub source: &'static str,
}

/// The redirection in `headers`: `Diversion` first, then `History-Info`.
pub fn redirection(headers: &Headers) -> Option<Redirection> {
    diversion(headers).or_else(|| history_info(headers))
}

/// The redirection of a request: the RFC 4458 `target`/`cause` parameters
/// of its Request-URI, then [`redirection`] of its headers.
pub fn redirection_of(uri: &Uri, headers: &Headers) -> Option<Redirection> {
    request_uri(uri).or_else(|| redirection(headers))
}

fn request_uri(uri: &Uri) -> Option<Redirection> {
    let target = crate::message::unescape(uri.param("target").flatten()?);
    let original = match crate::parse::parse_uri(&target) {
        Ok(t) => user_of(&t)?,
        // A bare number is also seen in the wild.
        Err(_) if !target.is_empty() && !target.contains([':', '@']) => target,
        Err(_) => return None,
    };
    Some(Redirection {
        original,
        reason: cause_of(uri).map_or("unknown", reason_for_cause).into(),
        source: "request-uri",
    })
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
    let parse_index =
        |i: &str| -> Vec<u32> { i.split('.').filter_map(|p| p.parse().ok()).collect() };
    // (index, uri, mp)
    let mut entries: Vec<(Vec<u32>, Uri, Option<Vec<u32>>)> = headers
        .get_all("History-Info")
        .flat_map(split_list)
        .filter_map(|v| parse_name_addr(v).ok())
        .map(|na| {
            let index = find_param(&na.params, "index")
                .flatten()
                .map(parse_index)
                .unwrap_or_default();
            let mp = find_param(&na.params, "mp").flatten().map(parse_index);
            (index, na.uri, mp)
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
    let (index, _, mp) = &entries[pos];
    let parent = (index.len() > 1).then(|| index[..index.len() - 1].to_vec());
    let from = [mp.clone(), parent]
        .into_iter()
        .flatten()
        .find_map(|want| entries.iter().find(|e| e.0 == want))
        .unwrap_or(&entries[pos - 1]);
    Some(Redirection {
        original: user_of(&from.1)?,
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

/// RFC 4458 section 3 (table 1): the cause codes of a voicemail retarget.
fn reason_for_cause(cause: u16) -> &'static str {
    match cause {
        486 => "user-busy",
        408 => "no-answer",
        302 => "unconditional",
        // Deflection during alerting (487) or as an immediate response (480).
        480 | 487 => "deflection",
        // Mobile subscriber not reachable.
        503 => "unavailable",
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
    fn history_info_follows_mp_to_the_retargeted_entry() {
        // A hunt group: sales (1) rang 101 (1.1) and 102 (1.2), then voicemail.
        let h = headers(&[(
            "History-Info",
            "<sip:sales@x>;index=1, <sip:101@x>;index=1.1;rc=1, <sip:102@x>;index=1.2;rc=1, \
             <sip:vm@x;cause=408>;index=1.3;mp=1",
        )]);
        let r = redirection(&h).unwrap();
        assert_eq!(
            (r.original.as_str(), r.reason.as_str()),
            ("sales", "no-answer")
        );
        // Without mp, the parent index.
        let h = headers(&[(
            "History-Info",
            "<sip:200@x>;index=1.1, <sip:201@x>;index=1.2, <sip:vm@x;cause=486>;index=1.1.1",
        )]);
        assert_eq!(redirection(&h).unwrap().original, "200");
    }

    #[test]
    fn the_rfc_4458_request_uri_comes_first() {
        let uri = crate::parse::parse_uri(
            "sip:vm@plugboard.example;target=sip:123%40pbx.example;cause=480",
        )
        .unwrap();
        let h = headers(&[("Diversion", "<sip:999@x>;reason=user-busy")]);
        let r = redirection_of(&uri, &h).unwrap();
        assert_eq!(
            (r.original.as_str(), r.reason.as_str(), r.source),
            ("123", "deflection", "request-uri")
        );
        let plain = crate::parse::parse_uri("sip:800@plugboard.example").unwrap();
        assert_eq!(redirection_of(&plain, &h).unwrap().original, "999");
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
