//! One request: route, authenticate, authorise, read the body, call the backend, answer.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue,
    WWW_AUTHENTICATE,
};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::auth;
use crate::backend::{AdminBackend, CdrQuery, PluginUpload, Principal};
use crate::error::ApiError;
use crate::routes::{self, Access, BodyKind, Miss, Op, Params};
use crate::{MAX_JSON_BODY, MAX_PROMPT_BODY, MAX_UPLOAD_BODY, OPENAPI_JSON, csv, metrics};

/// A client must send the whole body within this time.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A successful answer.
enum Reply {
    Json(StatusCode, Value),
    Text(&'static str, String),
    Static(&'static str, &'static str),
    NoContent,
}

/// An error answer and the one extra header some of them carry.
struct Failure {
    error: ApiError,
    header: Option<(HeaderName, String)>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure {
            error,
            header: None,
        }
    }
}

/// Answers one request; also returns the principal, for the log.
pub(crate) async fn handle(
    backend: &dyn AdminBackend,
    req: Request<Incoming>,
) -> (Response<Full<Bytes>>, Option<Principal>) {
    let mut principal = None;
    let result = respond(backend, req, &mut principal).await;
    let response = match result {
        Ok(reply) => reply_response(reply),
        Err(f) => error_response(&f.error, f.header),
    };
    (response, principal)
}

async fn respond(
    backend: &dyn AdminBackend,
    req: Request<Incoming>,
    who: &mut Option<Principal>,
) -> Result<Reply, Failure> {
    let (route, params) = match routes::find(req.method(), req.uri().path()) {
        Ok(found) => found,
        Err(Miss::NotFound) => {
            return Err(ApiError::not_found(format!(
                "no route {} (see GET /v1/openapi.json)",
                req.uri().path()
            ))
            .into());
        }
        Err(Miss::MethodNotAllowed(allowed)) => {
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            return Err(Failure {
                error: ApiError::new(
                    405,
                    "method_not_allowed",
                    format!(
                        "{} is not allowed on {}; allowed: {}",
                        req.method(),
                        req.uri().path(),
                        allow.join(", ")
                    ),
                ),
                header: Some((ALLOW, allow.join(", "))),
            });
        }
        Err(Miss::BadSegment(message)) => return Err(ApiError::bad_request(message).into()),
    };
    if route.access != Access::Public {
        let principal = auth::authenticate(req.headers(), backend).map_err(|f| Failure {
            error: f.error(),
            header: Some((WWW_AUTHENTICATE, f.challenge().to_owned())),
        })?;
        auth::authorize(route.access, &principal, params.domain())?;
        *who = Some(principal);
    }
    let query = req.uri().query().map(str::to_owned);
    let accept = req.headers().get(ACCEPT).cloned();
    let body = match route.body {
        BodyKind::None => Bytes::new(),
        BodyKind::Json => read_body(req, MAX_JSON_BODY).await?,
        BodyKind::Upload => read_body(req, MAX_UPLOAD_BODY).await?,
        BodyKind::PromptUpload => read_body(req, MAX_PROMPT_BODY).await?,
    };
    let principal = who.as_ref();
    Ok(dispatch(
        backend,
        route.op,
        &params,
        principal,
        body,
        query.as_deref(),
        accept,
    )
    .await?)
}

async fn dispatch(
    backend: &dyn AdminBackend,
    op: Op,
    params: &Params,
    principal: Option<&Principal>,
    body: Bytes,
    query: Option<&str>,
    accept: Option<HeaderValue>,
) -> Result<Reply, ApiError> {
    let domain = params.domain().map(str::to_ascii_lowercase);
    let d = domain.as_deref().unwrap_or("");
    let ok = |v: Value| Ok(json_reply(StatusCode::OK, v));
    let created = |v: Value| Ok(json_reply(StatusCode::CREATED, v));
    match op {
        Op::Health => ok(backend.health().await?),
        Op::Metrics => Ok(Reply::Text(
            metrics::CONTENT_TYPE,
            metrics::render(&backend.metrics().await?),
        )),
        Op::OpenApi => Ok(Reply::Static("application/json", OPENAPI_JSON)),
        Op::ListTenants => {
            let all = backend.list_tenants().await?;
            ok(match principal {
                Some(Principal::TenantAdmin { domain }) => own_tenant_only(all, domain)?,
                _ => all,
            })
        }
        Op::CreateTenant => created(backend.create_tenant(json_object(&body)?).await?),
        Op::GetTenant => ok(backend.get_tenant(d).await?),
        Op::PutTenant => {
            let doc = json_object(&body)?;
            if let Some(in_body) = doc.get("domain")
                && !in_body.as_str().is_some_and(|b| b.eq_ignore_ascii_case(d))
            {
                return Err(ApiError::bad_request(format!(
                    "the body's \"domain\" ({in_body}) differs from the path's ({d})"
                )));
            }
            let may_create = principal.is_some_and(Principal::is_operator);
            ok(backend.put_tenant(d, doc, may_create).await?)
        }
        Op::DeleteTenant => ok(backend.delete_tenant(d).await?),
        Op::ListUsers => ok(backend.list_users(d).await?),
        Op::CreateUser => created(backend.create_user(d, json_object(&body)?).await?),
        Op::GetUser => ok(backend.get_user(d, params.get("ext")).await?),
        Op::PutUser => ok(backend
            .put_user(d, params.get("ext"), json_object(&body)?)
            .await?),
        Op::DeleteUser => ok(backend.delete_user(d, params.get("ext")).await?),
        Op::GetDialplan => ok(backend.get_dialplan(d).await?),
        Op::PutDialEntry => ok(backend
            .put_dialplan_entry(d, params.get("number"), json_object(&body)?)
            .await?),
        Op::DeleteDialEntry => ok(backend
            .delete_dialplan_entry(d, params.get("number"))
            .await?),
        Op::ListPlugins => ok(backend.list_plugins().await?),
        Op::InstallPlugin => created(backend.install_plugin(plugin_upload(&body)?).await?),
        Op::UninstallPlugin => ok(backend
            .uninstall_plugin(params.get("name"), params.get("version"))
            .await?),
        Op::ListTrust => ok(backend.list_trust().await?),
        Op::AddTrust => created(backend.add_trust(text_field(&body, "public_key")?).await?),
        Op::RemoveTrust => ok(backend.remove_trust(params.get("key_id")).await?),
        Op::GetLicence => ok(backend.licence_status().await?),
        Op::PutLicence => ok(backend
            .put_licence(params.get("name"), text_field(&body, "licence")?)
            .await?),
        Op::DeleteLicence => ok(backend.delete_licence(params.get("name")).await?),
        Op::ListTenantPlugins => ok(backend.list_tenant_plugins(d).await?),
        Op::PutTenantPlugin => {
            let settings = json_object(&body)?;
            // Capabilities are the operator's to grant (as on the grants route).
            let grants = ["grants", "http_hosts"]
                .iter()
                .any(|k| settings.get(k).is_some());
            if grants && !principal.is_some_and(Principal::is_operator) {
                return Err(ApiError::forbidden(
                    "only the operator grants capabilities and HTTP hosts",
                ));
            }
            ok(backend
                .put_tenant_plugin(d, params.get("name"), settings)
                .await?)
        }
        Op::RollbackTenantPlugin => ok(backend
            .rollback_tenant_plugin(d, params.get("name"))
            .await?),
        Op::DeleteTenantPlugin => ok(backend.delete_tenant_plugin(d, params.get("name")).await?),
        Op::PutGrants => ok(backend
            .put_tenant_plugin_grants(d, params.get("name"), json_object(&body)?)
            .await?),
        Op::ListPrompts => ok(backend.list_prompts(d).await?),
        Op::PutPrompt => ok(backend
            .put_prompt(
                d,
                params.get("language"),
                params.get("name"),
                prompt_upload(&body)?,
            )
            .await?),
        Op::DeletePrompt => ok(backend
            .delete_prompt(d, params.get("language"), params.get("name"))
            .await?),
        Op::ListCalls => ok(backend.list_calls(None).await?),
        Op::ListTenantCalls => ok(backend.list_calls(Some(d)).await?),
        Op::ListRegistrations => ok(backend.list_registrations(d).await?),
        Op::ListCdrs | Op::ListTenantCdrs => {
            let (q, as_csv) = cdr_query(query, accept.as_ref())?;
            let scope = (op == Op::ListTenantCdrs).then_some(d);
            let records = backend.list_cdrs(scope, q).await?;
            if as_csv {
                Ok(Reply::Text(csv::CONTENT_TYPE, csv::render(&records)?))
            } else {
                ok(records)
            }
        }
    }
}

/// `Null` becomes 204 No Content.
fn json_reply(status: StatusCode, v: Value) -> Reply {
    if v.is_null() {
        Reply::NoContent
    } else {
        Reply::Json(status, v)
    }
}

/// Keeps the entries of the tenant list whose `domain` is `own`.
fn own_tenant_only(all: Value, own: &str) -> Result<Value, ApiError> {
    let Value::Array(items) = all else {
        return Err(ApiError::internal(
            "the backend returned a tenant list that is not an array",
        ));
    };
    Ok(Value::Array(
        items
            .into_iter()
            .filter(|t| {
                t.get("domain")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.eq_ignore_ascii_case(own))
            })
            .collect(),
    ))
}

/// Reads the body up to `limit` bytes, checking `Content-Type` (JSON or absent) first.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    check_content_type(req.headers())?;
    let too_large = || {
        ApiError::new(
            413,
            "payload_too_large",
            format!("request body larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(req.into_body(), limit).collect(),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            408,
            "request_timeout",
            format!("request body not received within {BODY_READ_TIMEOUT:?}"),
        )
    })?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("Content-Type must be application/json, not {text:?}"),
        ))
    }
}

/// Syntax errors are `invalid_json`; a valid document of the wrong shape is `bad_request`.
fn json_error(e: serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request(format!("request body has the wrong shape: {e}"))
        }
        _ => ApiError::new(
            400,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        ),
    }
}

fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            400,
            "invalid_json",
            "request body is empty; expected a JSON object",
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(json_error)?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(ApiError::bad_request("request body must be a JSON object"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    manifest: String,
    component: String,
    #[serde(default)]
    signature: Option<String>,
}

/// The one string field `key` of a JSON object body (`{"licence": "..."}`).
fn text_field(body: &[u8], key: &str) -> Result<String, ApiError> {
    let v = json_object(body)?;
    let fields: Vec<&String> = v
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    if fields.len() != 1 || fields[0] != key {
        return Err(ApiError::bad_request(format!(
            "expected {{\"{key}\": \"...\"}} and no other field"
        )));
    }
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("\"{key}\" must be a string")))
}

/// `{"manifest": "...", "component": "<base64>"}`, parsed without an intermediate `Value`.
fn plugin_upload(body: &[u8]) -> Result<PluginUpload, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            400,
            "invalid_json",
            "request body is empty; expected {\"manifest\": ..., \"component\": ...}",
        ));
    }
    let upload: UploadBody = serde_json::from_slice(body).map_err(json_error)?;
    let mut b64 = upload.component.into_bytes();
    b64.retain(|c| !c.is_ascii_whitespace());
    let component = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .map_err(|e| ApiError::bad_request(format!("\"component\" is not valid base64: {e}")))?;
    if component.is_empty() {
        return Err(ApiError::bad_request("\"component\" is empty"));
    }
    Ok(PluginUpload {
        manifest: upload.manifest,
        component,
        signature: upload.signature,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptBody {
    wav: String,
}

/// `{"wav": "<base64>"}` of a prompt upload: the decoded WAV bytes.
fn prompt_upload(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            400,
            "invalid_json",
            "request body is empty; expected {\"wav\": \"<base64 of the WAV file>\"}",
        ));
    }
    let upload: PromptBody = serde_json::from_slice(body).map_err(json_error)?;
    let mut b64 = upload.wav.into_bytes();
    b64.retain(|c| !c.is_ascii_whitespace());
    let wav = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .map_err(|e| ApiError::bad_request(format!("\"wav\" is not valid base64: {e}")))?;
    if wav.is_empty() {
        return Err(ApiError::bad_request("\"wav\" is empty"));
    }
    Ok(wav)
}

/// `since_ms`, `limit`, `format`; CSV also when `Accept` prefers `text/csv`.
fn cdr_query(
    query: Option<&str>,
    accept: Option<&HeaderValue>,
) -> Result<(CdrQuery, bool), ApiError> {
    let mut q = CdrQuery::default();
    let mut format = None;
    for (key, value) in parse_query(query.unwrap_or(""))? {
        let number = || {
            value.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter {key} must be a non-negative integer, not {value:?}"
                ))
            })
        };
        let seen = match key.as_str() {
            "since_ms" => q.since_ms.replace(number()?).is_some(),
            "limit" => {
                let n = number()?;
                if n == 0 {
                    return Err(ApiError::bad_request(
                        "query parameter limit must be at least 1",
                    ));
                }
                q.limit.replace(n).is_some()
            }
            "format" => match value.as_str() {
                "json" | "csv" => format.replace(value == "csv").is_some(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "query parameter format must be json or csv, not {value:?}"
                    )));
                }
            },
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {key:?} (known: since_ms, limit, format)"
                )));
            }
        };
        if seen {
            return Err(ApiError::bad_request(format!(
                "query parameter {key} given more than once"
            )));
        }
    }
    let as_csv = format.unwrap_or_else(|| accept.is_some_and(prefers_csv));
    Ok((q, as_csv))
}

/// Decoded `key=value` pairs (`+` is a space, as in HTML forms).
fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::bad_request("query string is not UTF-8 after percent-decoding"))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Whether `Accept` ranks `text/csv` above `application/json` (and above zero).
fn prefers_csv(accept: &HeaderValue) -> bool {
    let Ok(text) = accept.to_str() else {
        return false;
    };
    let mut csv_q = 0.0f32;
    let mut json_q = 0.0f32;
    for range in text.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/csv" => csv_q = csv_q.max(q),
            "application/json" => json_q = json_q.max(q),
            _ => {}
        }
    }
    csv_q > 0.0 && csv_q > json_q
}

fn base_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if !content_type.is_empty() {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn json_bytes(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    Bytes::from(out)
}

fn reply_response(reply: Reply) -> Response<Full<Bytes>> {
    match reply {
        Reply::Json(status, v) => base_response(status, "application/json", json_bytes(&v)),
        Reply::Text(content_type, text) => {
            base_response(StatusCode::OK, content_type, Bytes::from(text))
        }
        Reply::Static(content_type, text) => base_response(
            StatusCode::OK,
            content_type,
            Bytes::from_static(text.as_bytes()),
        ),
        Reply::NoContent => base_response(StatusCode::NO_CONTENT, "", Bytes::new()),
    }
}

/// The JSON error answer, with one optional extra header (`Allow`, `WWW-Authenticate`).
pub(crate) fn error_response(
    error: &ApiError,
    header: Option<(HeaderName, String)>,
) -> Response<Full<Bytes>> {
    let status =
        StatusCode::from_u16(error.wire_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = base_response(status, "application/json", json_bytes(&error.to_json()));
    if let Some((name, value)) = header
        && let Ok(v) = HeaderValue::from_str(&value)
    {
        r.headers_mut().insert(name, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let csv = |s: &'static str| prefers_csv(&HeaderValue::from_static(s));
        assert!(csv("text/csv"));
        assert!(csv("text/csv, application/json;q=0.5"));
        assert!(!csv("application/json, text/csv"));
        assert!(!csv("text/csv;q=0"));
        assert!(!csv("*/*"));
        assert!(csv("application/json;q=0.1, text/csv;q=0.9"));
    }

    #[test]
    fn cdr_queries() {
        let (q, c) = cdr_query(Some("since_ms=5&limit=10&format=csv"), None).unwrap();
        assert_eq!(q.since_ms, Some(5));
        assert_eq!(q.limit, Some(10));
        assert!(c);
        let accept = HeaderValue::from_static("text/csv");
        assert!(cdr_query(None, Some(&accept)).unwrap().1);
        assert!(!cdr_query(Some("format=json"), Some(&accept)).unwrap().1);
        for bad in [
            "limit=0",
            "limit=-1",
            "since_ms=x",
            "format=xml",
            "foo=1",
            "limit=1&limit=2",
        ] {
            assert_eq!(cdr_query(Some(bad), None).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(json_object(b"").unwrap_err().code, "invalid_json");
        assert_eq!(json_object(b"{").unwrap_err().code, "invalid_json");
        assert_eq!(json_object(b"[1]").unwrap_err().code, "bad_request");
        assert!(json_object(b" {\"a\": 1} ").is_ok());
        let up =
            plugin_upload(br#"{"manifest": "name = \"x\"", "component": "AGFz\nbQ=="}"#).unwrap();
        assert_eq!(up.component, b"\0asm");
        let e = plugin_upload(br#"{"manifest": "m"}"#).unwrap_err();
        assert!(e.message.contains("component"), "{}", e.message);
        assert!(plugin_upload(br#"{"manifest": "m", "component": "!!"}"#).is_err());
        assert!(plugin_upload(br#"{"manifest": "m", "component": "", "x": 1}"#).is_err());
        assert_eq!(prompt_upload(br#"{"wav": "UklG\nRg=="}"#).unwrap(), b"RIFF");
        for bad in [
            &br#"{}"#[..],
            br#"{"wav": ""}"#,
            br#"{"wav": "!!"}"#,
            br#"{"wav": "UklGRg==", "x": 1}"#,
            b"",
        ] {
            let e = prompt_upload(bad).unwrap_err();
            assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(bad));
        }
    }
}
