//! The GitClaw server: configuration, HTTP routes, the push and fetch services and
//! the `gitclaw` command line. The other crates know nothing of HTTP; this one wires
//! them together.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
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
    let router = http::router(state);
    // No Nagle: pkt-line answers are many small writes, and waiting on delayed ACKs
    // costs tens of milliseconds per round trip.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {err}");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
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
