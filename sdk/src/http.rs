//! Outbound HTTP (listener plugins), only to the hosts the operator
//! allow-listed for this plugin in this tenant; `http://` or `https://`.

use crate::__listener_bindings::plugboard::pbx::http as raw;

pub use raw::{HttpError, Request, Response};

/// Sends a request.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    raw::send(request)
}

/// POSTs a JSON body to `url`; `Ok` only for a 2xx answer.
pub fn post_json(url: &str, json: &str) -> Result<Response, HttpError> {
    let r = send(&Request {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: json.as_bytes().to_vec(),
        timeout_ms: 0,
    })?;
    if (200..300).contains(&r.status) {
        Ok(r)
    } else {
        Err(HttpError::Failed(format!("{url} answered {}", r.status)))
    }
}

impl From<HttpError> for crate::Error {
    fn from(e: HttpError) -> Self {
        let text = match e {
            HttpError::Denied(m) => format!("http denied: {m}"),
            HttpError::Invalid(m) => format!("invalid http request: {m}"),
            HttpError::Failed(m) => format!("http failed: {m}"),
            HttpError::Timeout => "http timeout".to_string(),
        };
        crate::Error::Other(text)
    }
}
