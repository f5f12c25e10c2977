//! Checks every request must pass before the host acts on it, and the
//! sanity check for responses.
//!
//! The host is a registrar and a B2BUA: it is the UAS for every request it
//! receives and never proxies. [`check_request`] therefore applies the UAS
//! rules of RFC 3261 section 8.2 (and RFC 4475's expectations for an
//! endpoint), in a fixed order, and returns the complete error response for
//! the first rule that fails. Parsing of the message itself (start line,
//! framing) happened before, in [`crate::parse::parse_message`].
//!
//! Decision on RFC 4475 3.2.1 (`badbranch.dat`, a branch of exactly
//! `z9hG4bK`): accepted here. The parse is fine; telling RFC 3261 branches
//! from RFC 2543 ones is the transaction layer's business.

use crate::message::{Method, Request, Response};
use crate::parse::{ParseError, add_to_tag, default_reason, reason_header, snippet, split_list};

/// The methods the host implements (the Allow header of a 501/405).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// The only body type the host handles in an INVITE.
const SDP: &str = "application/sdp";

fn reject(req: &Request, status: u16, text: &str) -> Response {
    let mut r = Response::for_request(req, status, default_reason(status));
    add_to_tag(&mut r.headers);
    r.headers.push("Reason", reason_header(status, text));
    r
}

fn bad_request(req: &Request, text: &str) -> Response {
    reject(req, 400, text)
}

/// Checks a parsed request, in this order, and returns the error response
/// for the first rule it breaks (with a To tag when the To header parses, and
/// a `Reason: SIP;cause=N;text="..."` header, RFC 3326):
///
/// 1. **400** unless there is exactly one each of Call-ID, From, To and
///    CSeq, and at least one Via, all parseable (RFC 3261 8.1.1, 8.2;
///    RFC 4475 3.3.1 `insuf`, 3.3.8 `multi01`, 3.1.2.1 `badinv01`,
///    3.1.2.4 `scalar02`, 3.1.2.6 `quotbal`, 3.1.2.14 `badaspec`). A Contact
///    header, when present, must parse too (RFC 3261 20.10: a URI with `?`
///    outside `<>` is malformed, RFC 4475 3.1.2.13 `regbadct`).
/// 2. **400** when the CSeq method differs from the request method
///    (RFC 3261 8.1.1.5, 12.2.1.1; RFC 4475 3.1.2.17 `mismatch01`); for an
///    unknown method the answer is **501** instead (3.1.2.18 `mismatch02`).
/// 3. **416** Unsupported URI Scheme unless the Request-URI is `sip:` or
///    `sips:` (RFC 3261 8.2.2.1; RFC 4475 3.3.2 `unkscm`, 3.3.3 `novelsc`).
/// 4. **400** when the Request-URI carries headers (`?Route=...`): RFC 3261
///    19.1.1 (table 1) does not allow them in a Request-URI, and RFC 4475
///    3.1.2.11 (`escruri`) lets an element reject them.
/// 5. **420** Bad Extension with an `Unsupported` header listing the option
///    tags of Require: the host supports none (RFC 3261 8.2.2.3; RFC 4475
///    3.3.5 `bext01`). Proxy-Require is for proxies and is ignored by a UAS
///    (RFC 3261 20.29). Not applied to ACK and CANCEL, which cannot be
///    rejected this way (RFC 3261 8.2.2.3, 9.2).
/// 6. **501** Not Implemented with `Allow` ([`ALLOW`]) for an extension
///    method (RFC 3261 8.2.1; RFC 4475 3.1.1.2 `intmeth`, 3.1.1.5 `esc02`).
///    Known methods outside Allow (INFO, UPDATE, ...) pass: the host decides.
/// 7. INVITE only: **415** Unsupported Media Type with `Accept:
///    application/sdp` when there is a body whose Content-Type is not
///    application/sdp (RFC 3261 8.2.3, 21.4.13; RFC 4475 3.3.6 `invut`);
///    **406** Not Acceptable when an Accept header does not allow
///    application/sdp (RFC 3261 8.2.3, 21.4.7; RFC 4475 3.3.15 `sdp01`).
/// 8. REGISTER only: **400** when the To URI is not `sip:`/`sips:`, since
///    it must be an address-of-record (RFC 3261 10.3 step 3; RFC 4475 3.3.4
///    `unksm2`).
///
/// Not errors: Max-Forwards 0 (the host is the endpoint, RFC 4475 3.3.11),
/// a missing or malformed Max-Forwards (RFC 4475 3.1.2.4 allows treating it
/// as absent), a bad Date (3.1.2.12: ignored, the host never reads it), a
/// branch of exactly `z9hG4bK` (3.2.1, see the module docs).
///
/// The caller must not send the response when the request is an ACK
/// (RFC 3261 17.1.1.3: ACK is never answered); it just drops the ACK.
pub fn check_request(req: &Request) -> Result<(), Response> {
    check_required(req).map_err(|e| bad_request(req, &e.reason))?;

    // Parsed fine in check_required.
    let cseq = req
        .headers
        .cseq()
        .map_err(|e| bad_request(req, &e.reason))?;
    let unknown = matches!(req.method, Method::Extension(_));
    if cseq.method != req.method {
        if unknown {
            return Err(not_implemented(req));
        }
        return Err(bad_request(
            req,
            &format!(
                "CSeq method {} does not match request method {}",
                snippet(cseq.method.as_str()),
                snippet(req.method.as_str())
            ),
        ));
    }

    if !req.uri.is_sip() {
        return Err(reject(
            req,
            416,
            &format!(
                "Request-URI scheme {} not supported",
                snippet(&req.uri.scheme)
            ),
        ));
    }
    if req.uri.headers.is_some() {
        return Err(bad_request(req, "headers are not allowed in a Request-URI"));
    }

    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let tags: Vec<&str> = req
            .headers
            .get_all("Require")
            .flat_map(split_list)
            .filter(|t| !t.is_empty())
            .collect();
        if !tags.is_empty() {
            let list = tags.join(", ");
            let mut r = reject(
                req,
                420,
                &format!("unsupported extensions: {}", snippet(&list)),
            );
            r.headers.push("Unsupported", list);
            return Err(r);
        }
    }

    if unknown {
        return Err(not_implemented(req));
    }

    if req.method == Method::Invite {
        if !req.body.is_empty() {
            match req.headers.content_type() {
                Some(t) if t == SDP => {}
                other => {
                    let text = match other {
                        Some(t) => format!("body type {} not supported", snippet(&t)),
                        None => "body without Content-Type".to_string(),
                    };
                    let mut r = reject(req, 415, &text);
                    r.headers.push("Accept", SDP);
                    return Err(r);
                }
            }
        }
        if !accepts_sdp(req) {
            return Err(reject(req, 406, "Accept does not allow application/sdp"));
        }
    }

    if req.method == Method::Register {
        // Parsed fine in check_required.
        let to = req
            .headers
            .to_addr()
            .map_err(|e| bad_request(req, &e.reason))?;
        if !to.uri.is_sip() {
            return Err(bad_request(
                req,
                &format!(
                    "To of a REGISTER must be a sip or sips URI, not {}",
                    snippet(&to.uri.scheme)
                ),
            ));
        }
    }
    Ok(())
}

fn not_implemented(req: &Request) -> Response {
    let mut r = reject(
        req,
        501,
        &format!("method {} not implemented", snippet(req.method.as_str())),
    );
    r.headers.push("Allow", ALLOW);
    r
}

/// Rule 1 of [`check_request`].
fn check_required(req: &Request) -> Result<(), ParseError> {
    let h = &req.headers;
    for name in ["Call-ID", "From", "To", "CSeq"] {
        match h.count(name) {
            1 => {}
            0 => return Err(ParseError::bad_request(format!("missing {name}"))),
            _ => return Err(ParseError::bad_request(format!("more than one {name}"))),
        }
    }
    if h.call_id().is_none() {
        return Err(ParseError::bad_request("empty Call-ID"));
    }
    if h.vias()?.is_empty() {
        return Err(ParseError::bad_request("missing Via"));
    }
    h.from_addr()?;
    h.to_addr()?;
    h.cseq()?;
    h.contacts()?;
    Ok(())
}

/// True when there is no Accept header (application/sdp is the default,
/// RFC 3261 20.1) or when one of its media ranges covers application/sdp
/// with a non-zero q. Empty Accept values are ignored.
fn accepts_sdp(req: &Request) -> bool {
    let mut ranges = req
        .headers
        .get_all("Accept")
        .flat_map(split_list)
        .filter(|r| !r.is_empty())
        .peekable();
    if ranges.peek().is_none() {
        return true;
    }
    ranges.any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            n.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        !q_zero && matches!(media.as_str(), "application/sdp" | "application/*" | "*/*")
    })
}

/// False for a response that must be dropped silently (RFC 3261 8.1.3.3,
/// 18.1.2; RFC 4475 3.1.2.5 `scalarlg`): one that lacks a parseable Via, or
/// does not have exactly one parseable CSeq (the number must fit in 32 bits),
/// Call-ID, From and To. A broadcast Via (RFC 4475 3.3.10 `bcast`) passes:
/// the host never forwards responses, so there is nothing to drop it for.
pub fn check_response(resp: &Response) -> bool {
    let h = &resp.headers;
    ["Call-ID", "From", "To", "CSeq"]
        .iter()
        .all(|n| h.count(n) == 1)
        && h.call_id().is_some()
        && h.vias().is_ok_and(|v| !v.is_empty())
        && h.cseq().is_ok()
        && h.from_addr().is_ok()
        && h.to_addr().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::parse::parse_message;

    fn req(text: &str) -> Request {
        match parse_message(text.replace('\n', "\r\n").as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn msg(start: &str, extra: &str, method: &str, body: &str) -> Request {
        req(&format!(
            "{start}\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\nTo: <sip:b@h>\nFrom: <sip:a@h>;tag=1\n\
             Call-ID: c1\nCSeq: 5 {method}\n{extra}Content-Length: {}\n\n{body}",
            body.len() + body.matches('\n').count()
        ))
    }

    fn status(r: &Request) -> Option<u16> {
        check_request(r).err().map(|e| e.status)
    }

    #[test]
    fn a_good_request_passes() {
        let r = msg(
            "INVITE sip:b@h SIP/2.0",
            "Content-Type: application/sdp\n",
            "INVITE",
            "v=0\n",
        );
        assert_eq!(status(&r), None);
        let r = msg(
            "OPTIONS sip:b@h SIP/2.0",
            "Max-Forwards: 0\nAccept: text/plain\n",
            "OPTIONS",
            "",
        );
        assert_eq!(status(&r), None);
    }

    #[test]
    fn required_headers() {
        let r = req("OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/UDP h\nCSeq: 1 OPTIONS\nl: 0\n\n");
        let e = check_request(&r).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.headers.get("Reason").unwrap().contains("missing Call-ID"));
        assert_eq!(e.headers.get("Via"), Some("SIP/2.0/UDP h"));
        let r = msg("OPTIONS sip:b@h SIP/2.0", "Call-ID: c2\n", "OPTIONS", "");
        assert_eq!(status(&r), Some(400));
        let r = msg(
            "OPTIONS sip:b@h SIP/2.0",
            "Contact: sip:a@h?x=y\n",
            "OPTIONS",
            "",
        );
        assert_eq!(status(&r), Some(400));
        let r = req(
            "OPTIONS sip:b@h SIP/2.0\nTo: <sip:b@h>\nFrom: <sip:a@h>;tag=1\n\
                     Call-ID: c1\nCSeq: 5 OPTIONS\nl: 0\n\n",
        );
        assert_eq!(status(&r), Some(400));
    }

    #[test]
    fn error_responses_carry_a_to_tag_and_reason() {
        let r = msg("OPTIONS sip:b@h SIP/2.0", "", "INVITE", "");
        let e = check_request(&r).unwrap_err();
        assert_eq!((e.status, e.reason.as_str()), (400, "Bad Request"));
        assert!(e.headers.to_addr().unwrap().tag().is_some());
        assert_eq!(e.headers.get("Call-ID"), Some("c1"));
        assert!(e.headers.get("Reason").unwrap().contains("does not match"));
    }

    #[test]
    fn method_rules() {
        let r = msg("FOO sip:b@h SIP/2.0", "", "INVITE", "");
        assert_eq!(status(&r), Some(501));
        let r = msg("FOO sip:b@h SIP/2.0", "", "FOO", "");
        let e = check_request(&r).unwrap_err();
        assert_eq!(e.status, 501);
        assert_eq!(e.headers.get("Allow"), Some(ALLOW));
        let r = msg("INFO sip:b@h SIP/2.0", "", "INFO", "");
        assert_eq!(status(&r), None);
    }

    #[test]
    fn uri_rules() {
        let r = msg("OPTIONS tel:+123 SIP/2.0", "", "OPTIONS", "");
        assert_eq!(status(&r), Some(416));
        let r = msg("OPTIONS sips:b@h SIP/2.0", "", "OPTIONS", "");
        assert_eq!(status(&r), None);
        let r = msg("OPTIONS sip:b@h?Route=x SIP/2.0", "", "OPTIONS", "");
        assert_eq!(status(&r), Some(400));
    }

    #[test]
    fn require() {
        let r = msg(
            "OPTIONS sip:b@h SIP/2.0",
            "Require: a, b\nRequire: c\nProxy-Require: p\n",
            "OPTIONS",
            "",
        );
        let e = check_request(&r).unwrap_err();
        assert_eq!(e.status, 420);
        assert_eq!(e.headers.get("Unsupported"), Some("a, b, c"));
        let r = msg(
            "OPTIONS sip:b@h SIP/2.0",
            "Proxy-Require: p\n",
            "OPTIONS",
            "",
        );
        assert_eq!(status(&r), None);
        let r = msg("CANCEL sip:b@h SIP/2.0", "Require: a\n", "CANCEL", "");
        assert_eq!(status(&r), None);
    }

    #[test]
    fn invite_body_and_accept() {
        let r = msg(
            "INVITE sip:b@h SIP/2.0",
            "Content-Type: text/plain\n",
            "INVITE",
            "hi",
        );
        let e = check_request(&r).unwrap_err();
        assert_eq!(e.status, 415);
        assert_eq!(e.headers.get("Accept"), Some("application/sdp"));
        let r = msg("INVITE sip:b@h SIP/2.0", "", "INVITE", "hi");
        assert_eq!(status(&r), Some(415));
        let r = msg(
            "INVITE sip:b@h SIP/2.0",
            "Content-Type: text/plain\n",
            "INVITE",
            "",
        );
        assert_eq!(status(&r), None);
        for (accept, want) in [
            ("text/html", Some(406)),
            ("application/sdp;q=0", Some(406)),
            ("text/html, Application/SDP", None),
            ("application/*", None),
            ("*/*;q=0.5", None),
        ] {
            let r = msg(
                "INVITE sip:b@h SIP/2.0",
                &format!("Accept: {accept}\n"),
                "INVITE",
                "",
            );
            assert_eq!(status(&r), want, "{accept}");
        }
    }

    #[test]
    fn register_to_must_be_sip() {
        let r = req(
            "REGISTER sip:h SIP/2.0\nVia: SIP/2.0/UDP h\nTo: isbn:2983792873\n\
                     From: <sip:a@h>;tag=1\nCall-ID: c\nCSeq: 1 REGISTER\nl: 0\n\n",
        );
        assert_eq!(status(&r), Some(400));
        let r = req(
            "OPTIONS sip:h SIP/2.0\nVia: SIP/2.0/UDP h\nTo: isbn:2983792873\n\
                     From: <sip:a@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\nl: 0\n\n",
        );
        assert_eq!(status(&r), None);
    }

    #[test]
    fn responses() {
        let resp = |cseq: &str| match parse_message(
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nTo: <sip:b@h>;tag=2\r\n\
                 From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: {cseq}\r\nl: 0\r\n\r\n"
            )
            .as_bytes(),
        ) {
            Ok(Message::Response(r)) => r,
            other => panic!("{other:?}"),
        };
        assert!(check_response(&resp("1 INVITE")));
        assert!(!check_response(&resp("9292394834772304023312 OPTIONS")));
        let mut r = resp("1 INVITE");
        r.headers.remove("Via");
        assert!(!check_response(&r));
    }
}
