//! The `http` capability: outbound HTTP for one plugin in one tenant, only to
//! the hosts the operator allow-listed (`http_hosts` of the tenant's plugin
//! binding). A request to any other host is refused before a connection is
//! made; so are redirects (they are returned, not followed).
//!
//! `http://` and `https://` (rustls; Mozilla's root certificates plus the
//! operator's `http_ca_file`, for private CAs). Bodies are capped at 1 MiB
//! each way.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use plugboard_plugins::{HttpClient, HttpError, HttpRequest, HttpResponse};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 1 << 20;

/// One process-wide connection pool.
#[derive(Clone)]
pub struct HttpPool {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpPool {
    /// A pool trusting Mozilla's roots and, when given, the PEM
    /// certificates in `extra_ca` (a private CA of the operator).
    pub fn new(extra_ca: Option<&Path>) -> anyhow::Result<HttpPool> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_ca {
            let mut n = 0;
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("http_ca_file {}", path.display()))?
            {
                let cert = cert.with_context(|| format!("http_ca_file {}", path.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("http_ca_file {}: bad certificate", path.display()))?;
                n += 1;
            }
            anyhow::ensure!(
                n > 0,
                "http_ca_file {}: no certificate in it",
                path.display()
            );
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpPool {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// A client limited to `allowed` hosts (`host` or `host:port`).
    pub fn for_plugin(&self, allowed: Vec<String>) -> AllowListed {
        AllowListed {
            pool: self.clone(),
            allowed,
        }
    }
}

/// [`HttpClient`] with an allow-list.
pub struct AllowListed {
    pool: HttpPool,
    allowed: Vec<String>,
}

/// Whether `authority` (host and port of the URL, port explicit) is allowed:
/// an entry `host` allows any port of it, `host:port` only that port.
fn allowed(list: &[String], host: &str, port: u16) -> bool {
    let host = host.to_ascii_lowercase();
    let with_port = format!("{host}:{port}");
    list.iter().any(|a| *a == host || *a == with_port)
}

#[async_trait::async_trait]
impl HttpClient for AllowListed {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri: hyper::Uri = req
            .url
            .parse()
            .map_err(|e| HttpError::Invalid(format!("url {:?}: {e}", req.url)))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(HttpError::Invalid(format!(
                    "url {:?}: only http:// and https:// URLs are supported",
                    req.url
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| HttpError::Invalid(format!("url {:?} has no host", req.url)))?;
        let port = uri.port_u16().unwrap_or(default_port);
        if !allowed(&self.allowed, host.trim_matches(['[', ']']), port) {
            return Err(HttpError::Denied(format!(
                "{host}:{port} is not on this plugin's allow-list for the tenant"
            )));
        }
        let method = match req.method.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                hyper::Method::from_bytes(m.as_bytes())
                    .map_err(|e| HttpError::Invalid(e.to_string()))?
            }
            other => return Err(HttpError::Invalid(format!("method {other:?} not allowed"))),
        };
        if req.body.len() > MAX_BODY {
            return Err(HttpError::Invalid("request body over 1 MiB".into()));
        }
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body)))
            .map_err(|e| HttpError::Invalid(e.to_string()))?;
        let timeout = match req.timeout_ms {
            0 => DEFAULT_TIMEOUT,
            ms => Duration::from_millis(ms as u64).min(MAX_TIMEOUT),
        };
        let exchange = async {
            let resp = self
                .pool
                .client
                .request(request)
                .await
                .map_err(|e| HttpError::Failed(e.to_string()))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError::Failed(format!("response body: {e}")))?
                .to_bytes()
                .to_vec();
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn host_entries_allow_any_port_host_port_entries_one() {
        let list = vec!["hooks.example".to_string(), "127.0.0.1:8080".to_string()];
        assert!(allowed(&list, "hooks.example", 80));
        assert!(allowed(&list, "HOOKS.example", 8443));
        assert!(allowed(&list, "127.0.0.1", 8080));
        assert!(!allowed(&list, "127.0.0.1", 8081));
        assert!(!allowed(&list, "evil.example", 80));
        assert!(!allowed(&list, "hooks.example.evil", 80));
    }
}
