//! Authentication (the `Authorization: Bearer` header) and authorisation (route access rules).

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use crate::backend::{AdminBackend, Principal};
use crate::error::ApiError;
use crate::routes::Access;

/// Why authentication failed; both are answered with 401 and `WWW-Authenticate`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No usable `Authorization: Bearer` header.
    Missing,
    /// A bearer token the backend does not know.
    Invalid,
}

impl AuthFailure {
    /// The `WWW-Authenticate` value (RFC 6750 section 3).
    pub fn challenge(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "Bearer realm=\"plugboard\"",
            AuthFailure::Invalid => "Bearer realm=\"plugboard\", error=\"invalid_token\"",
        }
    }

    /// The error body.
    pub fn error(&self) -> ApiError {
        match self {
            AuthFailure::Missing => ApiError::new(
                401,
                "unauthorized",
                "missing bearer token: send \"Authorization: Bearer TOKEN\"",
            ),
            AuthFailure::Invalid => ApiError::new(401, "unauthorized", "invalid bearer token"),
        }
    }
}

/// The principal behind the request's bearer token.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    backend: &dyn AdminBackend,
) -> Result<Principal, AuthFailure> {
    let token = bearer_token(headers).ok_or(AuthFailure::Missing)?;
    backend.authenticate(token).ok_or(AuthFailure::Invalid)
}

/// The token of the one `Authorization: Bearer TOKEN` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `principal` may use a route with `access` on tenant `domain` (the
/// decoded `{domain}` parameter, if the route has one).
///
/// A tenant admin gets 403 for operator-only routes and for any other
/// tenant's domain, whether or not that domain exists.
pub(crate) fn authorize(
    access: Access,
    principal: &Principal,
    domain: Option<&str>,
) -> Result<(), ApiError> {
    let ok = match access {
        Access::Public | Access::Authenticated => true,
        Access::Operator => principal.is_operator(),
        Access::Tenant => domain.is_some_and(|d| principal.may_access_tenant(d)),
    };
    if ok {
        return Ok(());
    }
    Err(ApiError::forbidden(match access {
        Access::Operator => "this route is for the operator only",
        _ => "a tenant administrator may only manage its own tenant",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"])), Some("abc"));
        assert_eq!(bearer_token(&headers(&["bearer  abc "])), Some("abc"));
        assert_eq!(bearer_token(&headers(&["Basic abc"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer "])), None);
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), None);
        assert_eq!(bearer_token(&headers(&[])), None);
    }

    #[test]
    fn rules() {
        let admin = Principal::TenantAdmin {
            domain: "a.test".into(),
        };
        assert!(authorize(Access::Tenant, &admin, Some("A.TEST")).is_ok());
        assert_eq!(
            authorize(Access::Tenant, &admin, Some("b.test"))
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            authorize(Access::Operator, &admin, Some("a.test"))
                .unwrap_err()
                .code,
            "forbidden"
        );
        assert!(authorize(Access::Authenticated, &admin, None).is_ok());
        assert!(authorize(Access::Operator, &Principal::Operator, None).is_ok());
        assert!(authorize(Access::Tenant, &Principal::Operator, Some("x")).is_ok());
    }
}
