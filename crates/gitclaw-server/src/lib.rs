//! The GitClaw server: configuration, HTTP routes, the push and fetch services and
//! the `gitclaw` command line. The other crates know nothing of HTTP; this one wires
//! them together.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod http;
pub mod names;
pub mod service;

use std::future::Future;

pub use app::AppState;
pub use config::Config;

/// Serve on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    service::gc::spawn_deletion_loop(state.clone(), std::time::Duration::from_secs(60));
    service::gc::spawn_sweep_loop(state.clone());
    let timeouts = connections::ConnectionTimeouts::from(&state.config.timeouts);
    let router = http::router(state);
    connections::serve(listener, router, timeouts, shutdown).await?;
    Ok(())
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
