//! `vigil serve`: a long-running engine running many jobs, with an HTTP API
//! (`/api/...`), Prometheus metrics (`/metrics`), a health check (`/healthz`)
//! and a dashboard (`/`), all on one address.

pub mod api;
pub mod jobs;
pub mod openapi;
pub mod prometheus;
pub mod results;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jobs::Jobs;

use crate::Vigil;

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8640";

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where jobs and their checkpoints are kept.
    pub state_dir: PathBuf,
    /// The bearer token API calls must carry (required off loopback).
    pub token: Option<String>,
    /// HTTPS: the certificate chain and private key, PEM files (required
    /// off loopback unless `insecure_no_tls`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Serve plain HTTP off loopback (behind a proxy that terminates TLS).
    pub insecure_no_tls: bool,
}

/// A server that is listening.
pub struct RunningServer {
    /// The address it listens on (the port chosen when 0 was asked).
    pub addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub tls: bool,
    jobs: Arc<Jobs>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops listening and stops the jobs, leaving the running ones to
    /// resume when a server starts again on the same state directory.
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.shutdown.send(());
        let served = self.task.await;
        self.jobs.shutdown().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the server failed: {e}")),
            Err(e) => Err(format!("the server failed: {e}")),
        }
    }
}

/// Serves `/metrics` (and `/healthz`) for one job of an embedding program,
/// as job `name`, on `listen` until `stop` fires; returns the address bound.
/// Run it beside [`Vigil::run_script_into`] with the same `metrics`.
pub async fn serve_metrics(
    listen: SocketAddr,
    name: &str,
    metrics: vigil_engine::metrics::Metrics,
    stop: vigil_engine::control::StopSignal,
) -> Result<SocketAddr, String> {
    serve_job(listen, name, metrics, stop, None).await
}

/// As [`serve_metrics`], for `vigil run --listen`: of a job running as
/// several processes (`board` filled), the series carry this process's
/// `worker` label and `/api/members` shows the membership it runs in.
pub async fn serve_job(
    listen: SocketAddr,
    name: &str,
    metrics: vigil_engine::metrics::Metrics,
    mut stop: vigil_engine::control::StopSignal,
    board: Option<crate::distributed::StatusBoard>,
) -> Result<SocketAddr, String> {
    use axum::response::IntoResponse;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("error: cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("error: cannot listen on {listen}: {e}"))?;
    let jobs = vec![(name.to_string(), metrics.clone())];
    let status = move || {
        let mut s = board
            .as_ref()
            .and_then(|b| b.lock().ok().and_then(|b| b.clone()))?;
        let last = metrics.total(vigil_engine::metrics::names::LAST_CHECKPOINT);
        s.last_checkpoint = (last > 0).then_some(last);
        Some(s)
    };
    let members = status.clone();
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/api/members",
            get(move || {
                let s = members();
                async move {
                    match s {
                        Some(s) => axum::Json(s).into_response(),
                        None => (
                            axum::http::StatusCode::NOT_FOUND,
                            "this job does not run as several processes ('execution.mode' = 'distributed')\n",
                        )
                            .into_response(),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let jobs = jobs.clone();
                let labels: Vec<(String, String)> = status()
                    .map(|s| vec![("worker".to_string(), s.worker)])
                    .unwrap_or_default();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        prometheus::render_labelled(&jobs, &labels),
                    )
                }
            }),
        );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.stopped().await })
            .await;
        if let Err(e) = served {
            tracing::error!("the metrics endpoint failed: {e}");
        }
    });
    Ok(addr)
}

/// Starts a server: checks the address and token, resumes the jobs kept in
/// the state directory, and listens.
pub async fn start(vigil: Vigil, config: ServeConfig) -> Result<RunningServer, String> {
    let exposed = !config.listen.ip().is_loopback();
    if exposed && config.token.as_deref().is_none_or(str::is_empty) {
        return Err(format!(
            "error: listening on {} (not a loopback address) needs a bearer token: pass --token or set VIGIL_TOKEN",
            config.listen
        ));
    }
    if exposed && config.tls.is_none() && !config.insecure_no_tls {
        return Err(format!(
            "error: listening on {} (not a loopback address) needs TLS, or the token crosses the network in clear: pass --tls-cert and --tls-key, or --insecure-no-tls behind a proxy that terminates TLS",
            config.listen
        ));
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let jobs = Jobs::open(vigil, &config.state_dir).map_err(|e| {
        format!(
            "error: cannot use state directory '{}': {e}",
            config.state_dir.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("error: cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("error: cannot listen on {}: {e}", config.listen))?;
    jobs.resume().await;
    let app = api::router(jobs.clone(), config.token.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = rx.await;
    };
    let task = match tls.clone() {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls)
                .map_err(|e| format!("error: cannot listen on {}: {e}", config.listen))?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            })
        }
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }),
    };
    Ok(RunningServer {
        addr,
        tls: tls.is_some(),
        jobs,
        shutdown: tx,
        task,
    })
}
