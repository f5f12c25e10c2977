//! A small HTTP client for the admin API (plain `http://` only), used by [`crate::cli`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

pub use hyper::Method;

/// No request may take longer than this (plugin uploads included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Characters escaped in a path segment: everything but RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment: `*98` becomes `%2A98`, `+49` `%2B49`, `a/b` `a%2Fb`.
pub fn encode_segment(segment: &str) -> String {
    match segment {
        // Would be taken as dot-segments by anything that normalises paths.
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        s => utf8_percent_encode(s, SEGMENT).to_string(),
    }
}

/// A path built from segments, each percent-encoded: `path(&["v1", "tenants", d])`.
pub fn path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", encode_segment(s)))
        .collect()
}

/// Client-side failures (an HTTP error status is not one: see [`ApiResponse`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not a plain `http://host[:port][/prefix]` URL.
    #[error("invalid API URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot connect to the plugboard admin API at {url}: {reason}")]
    Connect {
        /// The base URL.
        url: String,
        /// E.g. "connection refused".
        reason: String,
    },
    /// The exchange failed after connecting (connection reset, bad response).
    #[error("request to {url} failed: {reason}")]
    Http {
        /// The full request URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// The full request URL.
        url: String,
        /// The limit.
        timeout: Duration,
    },
}

/// The body of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    /// No body (e.g. 204).
    Empty,
    /// A JSON body (`Content-Type: application/json`).
    Json(Value),
    /// Anything else, as text (CSV, Prometheus metrics), lossily decoded as UTF-8.
    Text(String),
}

/// An answer of the API, whatever its status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: ResponseBody,
}

impl ApiResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// For an error answer: the `error.message` of the JSON body, or the text body.
    pub fn error_message(&self) -> String {
        match &self.body {
            ResponseBody::Json(v) => v["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string()),
            ResponseBody::Text(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => hyper::StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_owned(),
        }
    }
}

/// An admin API client: a base URL and an optional bearer token.
#[derive(Clone)]
pub struct Client {
    /// E.g. `http://127.0.0.1:8090` (a path prefix such as `/pbx` is kept).
    pub base_url: String,
    /// Sent as `Authorization: Bearer TOKEN` when set.
    pub token: Option<String>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for `base_url` (checked on each request).
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Client {
        Client {
            base_url: base_url.into(),
            token,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends `method path` (path starting with `/v1`, query included, segments
    /// already encoded, see [`path`]) with an optional JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<ApiResponse, ClientError> {
        let url = self.url(path)?;
        let mut builder = Request::builder()
            .method(method)
            .uri(url.clone())
            .header(ACCEPT, "application/json, text/csv;q=0.5, text/plain;q=0.5");
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::InvalidUrl {
                    url: self.base_url.clone(),
                    reason: "the token contains characters not allowed in a header".into(),
                }
            })?;
            builder = builder.header(AUTHORIZATION, value);
        }
        let body = match body {
            Some(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(serde_json::to_vec(&v).unwrap_or_default()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| ClientError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                let reason = root_cause(&e);
                if e.is_connect() {
                    ClientError::Connect {
                        url: self.base_url.clone(),
                        reason,
                    }
                } else {
                    ClientError::Http {
                        url: url.to_string(),
                        reason,
                    }
                }
            })?;
            let status = response.status().as_u16();
            let is_json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    let essence = v.split(';').next().unwrap_or("").trim();
                    essence.eq_ignore_ascii_case("application/json")
                });
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Http {
                    url: url.to_string(),
                    reason: root_cause(&e),
                })?
                .to_bytes();
            let body = if bytes.is_empty() {
                ResponseBody::Empty
            } else if is_json {
                match serde_json::from_slice(&bytes) {
                    Ok(v) => ResponseBody::Json(v),
                    Err(_) => ResponseBody::Text(String::from_utf8_lossy(&bytes).into_owned()),
                }
            } else {
                ResponseBody::Text(String::from_utf8_lossy(&bytes).into_owned())
            };
            Ok(ApiResponse { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.to_string(),
                timeout: REQUEST_TIMEOUT,
            })?
    }

    fn url(&self, path: &str) -> Result<Uri, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: self.base_url.clone(),
            reason: reason.to_owned(),
        };
        let base = self.base_url.trim_end_matches('/');
        let uri: Uri = base
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported; use http:// (through an SSH tunnel or a local TLS proxy)",
                ));
            }
            _ => return Err(invalid("expected http://HOST[:PORT]")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if uri.query().is_some() {
            return Err(invalid("a base URL cannot have a query"));
        }
        format!("{base}{path}")
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))
    }
}

/// The innermost error's text, e.g. "Connection refused (os error 111)" → "connection refused".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &(dyn std::error::Error + 'static) = e;
    while let Some(source) = last.source() {
        last = source;
    }
    if let Some(io) = last.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                return "connection refused (is plugboard running with the admin API enabled?)"
                    .into();
            }
            std::io::ErrorKind::TimedOut => return "connection timed out".into(),
            _ => {}
        }
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("*98"), "%2A98");
        assert_eq!(encode_segment("+4930"), "%2B4930");
        assert_eq!(encode_segment("a.test"), "a.test");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(
            path(&["v1", "tenants", "a.test", "dialplan", "*98"]),
            "/v1/tenants/a.test/dialplan/%2A98"
        );
    }

    #[test]
    fn urls() {
        let c = |u: &str| Client::new(u, None).url("/v1/health");
        assert_eq!(
            c("http://127.0.0.1:8090").unwrap().to_string(),
            "http://127.0.0.1:8090/v1/health"
        );
        assert_eq!(
            c("http://h/pbx/").unwrap().to_string(),
            "http://h/pbx/v1/health"
        );
        assert!(
            c("https://h")
                .unwrap_err()
                .to_string()
                .contains("https is not supported")
        );
        assert!(c("127.0.0.1:8090").is_err());
        assert!(c("ftp://h").is_err());
    }

    #[test]
    fn error_messages() {
        let r = ApiResponse {
            status: 404,
            body: ResponseBody::Json(
                serde_json::json!({"error": {"code": "not_found", "message": "no such user"}}),
            ),
        };
        assert_eq!(r.error_message(), "no such user");
        let r = ApiResponse {
            status: 502,
            body: ResponseBody::Empty,
        };
        assert_eq!(r.error_message(), "Bad Gateway");
    }

    #[tokio::test]
    async fn connection_refused_names_the_url() {
        // Bind and drop to get a port that (almost certainly) nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = Client::new(&url, None)
            .request(Method::GET, "/v1/health", None)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ClientError::Connect { .. }), "{text}");
        assert!(
            text.contains(&url) && text.contains("connection refused"),
            "{text}"
        );
    }
}
