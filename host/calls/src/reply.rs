//! Building responses and in-dialog requests the way a UAS must (RFC 3261 8.2.6, 12.2).

use plugboard_sip::message::set_param;
use plugboard_sip::{Request, Response};

/// A response to `req` with a To tag (every final and non-100 provisional
/// response carries one, RFC 3261 8.2.6.2). `tag` is used when the request's
/// To has none.
pub fn response_with_tag(req: &Request, status: u16, reason: &str, tag: &str) -> Response {
    let mut r = Response::for_request(req, status, reason);
    if status > 100
        && let Ok(mut to) = req.headers.to_addr()
        && to.tag().is_none()
    {
        set_param(&mut to.params, "tag", Some(tag.to_string()));
        r.headers.set("To", to.to_string());
    }
    r
}

/// A response with a fresh To tag and a Reason header (RFC 3326) explaining it.
pub fn reject(req: &Request, status: u16, reason: &str, text: &str) -> Response {
    let mut r = response_with_tag(req, status, reason, &plugboard_sip::util::new_tag());
    r.headers.push(
        "Reason",
        format!("SIP;cause={status};text=\"{}\"", text.replace('"', "'")),
    );
    r
}

/// 481 for a request that names a dialog or transaction the host does not have.
pub fn no_such_dialog(req: &Request) -> Response {
    reject(
        req,
        481,
        "Call/Transaction Does Not Exist",
        "no such dialog",
    )
}

/// A plain response with a fresh To tag.
pub fn reply(req: &Request, status: u16, reason: &str) -> Response {
    response_with_tag(req, status, reason, &plugboard_sip::util::new_tag())
}

/// The methods the host accepts (Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE";
