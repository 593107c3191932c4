//! The GitClaw server: configuration, HTTP routes, the push and fetch services and
//! the `gitclaw` command line. The other crates know nothing of HTTP; this one wires
//! them together.
//!
//! Data flows one way: [`http`] (extract, authorize, call a service, render)
//! → [`service`] (orchestrates one git or API operation) → the protocol, pack,
//! storage and metadata crates. [`cli`] calls the same services as the REST
//! API. [`error`] holds the one error type of a git request and decides what a
//! client is told; [`config`] holds every setting; [`app`] holds all shared
//! state; [`connections`] is the accept loop with its timeouts.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod error;
pub mod http;
pub mod metrics;
pub mod names;
pub mod scratch;
pub mod service;
pub mod telemetry;
pub mod time;
pub mod tls;

use std::future::Future;

pub use app::AppState;
pub use config::Config;

/// Serve on `listener` until `shutdown` resolves; in-flight requests finish
/// first, then the background tasks (deletions, sweeps, gc, webhook
/// deliveries) are stopped and waited for.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::sweep::spawn_deletion_loop(&state, std::time::Duration::from_secs(60));
    service::sweep::spawn_sweep_loop(&state);
    service::hooks::spawn_deliverer(&state);
    let limits =
        connections::ConnectionLimits::of(&state.config, state.metrics.connections_open.clone());
    let router = http::router(state.clone());
    let served = connections::serve(listener, router, limits, state.tls.clone(), shutdown).await;
    state.stop_background().await;
    served
}

/// Connections the metrics listener serves at once.
const METRICS_CONNECTIONS: usize = 16;

/// Serve `/metrics` and the probes on `listener` (`GITCLAW_METRICS_LISTEN`)
/// in the background, until the server shuts down.
pub fn serve_metrics(listener: tokio::net::TcpListener, state: &AppState) {
    // Its own few connections: scrapes and probes get through when the main
    // listener is at its limit.
    let limits = connections::ConnectionLimits {
        max: METRICS_CONNECTIONS,
        open: None,
        ..connections::ConnectionLimits::of(&state.config, state.metrics.connections_open.clone())
    };
    let router = http::metrics_router(state.clone());
    let stop = state.shutdown.clone().cancelled_owned();
    let tls = state.tls.clone().filter(|_| state.config.metrics_tls);
    state.spawn(async move {
        if let Err(err) = connections::serve(listener, router, limits, tls, stop).await {
            tracing::error!(error = %err, "the metrics listener failed");
        }
    });
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
