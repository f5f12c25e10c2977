//! [`ApiError`]: the one error type of the API, for the backend and the crate alike.

use serde_json::{Value, json};

/// An error answer: an HTTP status, a machine-readable code and a sentence for people.
///
/// On the wire it is `{"error": {"code": "not_found", "message": "no user 101 in a.test"}}`
/// with `status` as the HTTP status. The backend returns these from every
/// method; the crate produces them itself for authentication, authorisation,
/// routing and request parsing problems. A backend status outside 400..=599 is
/// answered as 500 (a successful answer must be an `Ok`).
///
/// Codes used by the crate: `unauthorized`, `forbidden`, `not_found`,
/// `method_not_allowed`, `bad_request`, `invalid_json`, `payload_too_large`,
/// `unsupported_media_type`, `request_timeout`, `internal`. A backend should reuse them
/// where they fit and may add its own (`conflict`, `invalid_manifest`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (HTTP {status}, {code})")]
pub struct ApiError {
    /// HTTP status code, 400..=599.
    pub status: u16,
    /// Machine-readable code in `snake_case`, e.g. `not_found`.
    pub code: String,
    /// Human-readable explanation, one sentence, no trailing period needed.
    pub message: String,
}

impl ApiError {
    /// Any status, code and message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 `bad_request`: the request is well-formed JSON but its content is refused.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    /// 409 `conflict`: e.g. creating something that exists, deleting something in use.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "conflict", message)
    }

    /// 500 `internal`: a fault on the server side (details belong in the log, not here).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal", message)
    }

    /// 503 `unavailable`: e.g. a failing health check or a store that is down.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", message)
    }

    /// The JSON body sent to the client.
    pub fn to_json(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }

    /// The status to send: `status` if it is an error status, else 500.
    pub(crate) fn wire_status(&self) -> u16 {
        if (400..=599).contains(&self.status) {
            self.status
        } else {
            500
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = ApiError::not_found("no user 101");
        assert_eq!(
            e.to_json(),
            json!({"error": {"code": "not_found", "message": "no user 101"}})
        );
        assert_eq!(e.to_string(), "no user 101 (HTTP 404, not_found)");
    }

    #[test]
    fn success_status_is_not_an_error() {
        assert_eq!(ApiError::new(200, "x", "y").wire_status(), 500);
        assert_eq!(ApiError::new(99, "x", "y").wire_status(), 500);
        assert_eq!(ApiError::new(422, "x", "y").wire_status(), 422);
    }
}
