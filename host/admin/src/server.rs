//! The HTTP/1.1 server: accept loop, per-connection limits, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::backend::{AdminBackend, Principal};
use crate::error::ApiError;
use crate::handlers;

/// A client must send the request line and headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After the shutdown future completes, in-flight requests get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves the admin API on `listener` until `shutdown` completes.
///
/// HTTP/1.1 only, plain TCP: put a TLS-terminating proxy in front of it, or
/// bind it to loopback. Each request runs in its own task, so a panicking
/// backend method costs a 500 answer, not the connection or the server.
/// Failed `accept` calls (e.g. out of file descriptors) are logged and
/// retried. When `shutdown` completes the listener is closed, idle
/// connections are closed, and requests in flight get ten seconds to finish.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<dyn AdminBackend>,
    shutdown: impl Future + Send,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("admin API: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let backend = backend.clone();
        let service = service_fn(move |req| {
            let backend = backend.clone();
            async move { Ok::<_, Infallible>(handle_isolated(backend, req, peer).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("admin API: connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("admin API: requests still running after {SHUTDOWN_GRACE:?}; closing");
        }
    }
}

/// Runs one request in its own task and logs it.
async fn handle_isolated(
    backend: Arc<dyn AdminBackend>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (response, principal) =
        match tokio::spawn(async move { handlers::handle(&*backend, req).await }).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("admin API: {method} {path}: handler failed: {e}");
                let err = ApiError::internal("internal error (see the server log)");
                (handlers::error_response(&err, None), None)
            }
        };
    let who = match &principal {
        None => "-".to_owned(),
        Some(Principal::Operator) => "operator".to_owned(),
        Some(Principal::TenantAdmin { domain }) => format!("tenant-admin:{domain}"),
    };
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    // Changes are an audit trail: log them at info; reads at debug.
    if method == hyper::Method::GET {
        tracing::debug!("admin API: {peer} {who} {method} {path} -> {status} in {elapsed:?}");
    } else {
        tracing::info!("admin API: {peer} {who} {method} {path} -> {status} in {elapsed:?}");
    }
    response
}
