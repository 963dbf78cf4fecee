//! The HTTPS API server: TLS, bearer-token authentication, per-identity authorization,
//! discovery, REST handlers over the store, watch, patch, apply, logs and exec.

pub mod admission;
pub mod auth;
pub mod defaults;
pub mod discovery;
pub mod exec;
pub mod faults;
pub mod handlers;
pub mod kubeconfig;
pub mod logs;
pub mod patch;
pub mod protobuf;
pub mod request;
pub mod resources;
pub mod review;
pub mod router;
pub mod table;
pub mod tls;
pub mod validate;
pub mod watch;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch as tokio_watch;
use tokio_rustls::TlsAcceptor;

use crate::controllers::kubelet::PodRuntime;
use crate::store::{ApiError, Store};

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Everything a request handler may touch.
pub struct ApiState {
    pub store: Arc<Store>,
    pub auth: auth::Auth,
    pub faults: faults::Faults,
    pub runtime: Arc<dyn PodRuntime>,
    pub state_dir: PathBuf,
    /// `host:port` the server listens on
    pub address: String,
    /// Flips to true at shutdown; long-running watches and streams end
    pub shutdown: tokio_watch::Receiver<bool>,
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header("Content-Type", "application/json")
        .body(full(serde_json::to_vec(v).expect("JSON serialises")))
        .expect("response builds")
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Binds `127.0.0.1:port` (0 for any free port).
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves TLS connections on `listener` until the state's `shutdown` flips.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, state: Arc<ApiState>) {
    let acceptor = TlsAcceptor::from(tls);
    let mut shutdown = state.shutdown.clone();
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(router::handle(state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            let _ = conn.await;
        });
    }
}
