//! Digest authentication of requests against a tenant's users (RFC 3261 22,
//! RFC 8760). REGISTER is challenged with 401/WWW-Authenticate, everything
//! else with 407/Proxy-Authenticate. Both SHA-256 and MD5 challenges are
//! offered, SHA-256 first (RFC 8760 section 2.4).

use crate::registrar::now_secs;

use plugboard_sip::auth::{self, Algorithm, Challenge, NonceManager, NonceState};
use plugboard_sip::{Request, Response};

use plugboard_tenants::{Tenant, User};

/// The result of checking a request's credentials.
pub enum AuthResult<'a> {
    /// Credentials verified for this user.
    Ok(&'a User),
    /// Answer with this response (a challenge or a refusal).
    Reject(Response),
}

/// Checks the digest credentials of `req` for `tenant`. `expected_user`, when
/// given, is the only user the credentials may name (the AOR of a REGISTER,
/// the From user of an INVITE).
pub fn authenticate<'a>(
    req: &Request,
    tenant: &'a Tenant,
    nonces: &NonceManager,
    algorithms: &[Algorithm],
    expected_user: Option<&str>,
) -> AuthResult<'a> {
    let register = req.method == plugboard_sip::Method::Register;
    let header = if register {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    let now = now_secs();
    // Several credentials may be present (one per realm): use ours.
    let creds = req
        .headers
        .get_all(header)
        .filter_map(|v| auth::parse_authorization(v).ok())
        .find(|c| c.realm.eq_ignore_ascii_case(&tenant.domain));
    let Some(creds) = creds else {
        return AuthResult::Reject(challenge(req, tenant, nonces, algorithms, now, false));
    };
    match nonces.check(&creds.nonce, now) {
        NonceState::Valid => {}
        NonceState::Stale => {
            return AuthResult::Reject(challenge(req, tenant, nonces, algorithms, now, true));
        }
        NonceState::Invalid => {
            return AuthResult::Reject(challenge(req, tenant, nonces, algorithms, now, false));
        }
    }
    let user = match tenant.user(&creds.username) {
        Some(u) => u,
        None => return AuthResult::Reject(refuse(req, "Unknown user")),
    };
    if let Some(exp) = expected_user
        && exp != creds.username
    {
        return AuthResult::Reject(refuse(req, "Credentials do not match the user"));
    }
    let ha1 = auth::ha1(
        creds.algorithm,
        &creds.username,
        &tenant.domain,
        &user.password,
    );
    if auth::verify(&creds, req.method.as_str(), &ha1) {
        AuthResult::Ok(user)
    } else {
        AuthResult::Reject(refuse(req, "Wrong credentials"))
    }
}

fn refuse(req: &Request, why: &str) -> Response {
    crate::reply::reject(req, 403, "Forbidden", why)
}

fn challenge(
    req: &Request,
    tenant: &Tenant,
    nonces: &NonceManager,
    algorithms: &[Algorithm],
    now: u64,
    stale: bool,
) -> Response {
    let register = req.method == plugboard_sip::Method::Register;
    let (code, reason, header) = if register {
        (401, "Unauthorized", "WWW-Authenticate")
    } else {
        (407, "Proxy Authentication Required", "Proxy-Authenticate")
    };
    let mut r = crate::reply::reply(req, code, reason);
    for &algorithm in algorithms {
        let c = Challenge {
            realm: tenant.domain.clone(),
            nonce: nonces.issue(now),
            opaque: None,
            algorithm,
            stale,
        };
        r.headers.push(header, c.to_string());
    }
    r
}
