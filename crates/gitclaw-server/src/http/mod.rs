//! The HTTP surface: git smart-HTTP routes, the REST API and operational endpoints.

pub mod api;
pub mod body;
pub mod git;

use axum::{
    routing::{get, post},
    Router,
};

use crate::app::AppState;

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let pace = body::BodyPace::from(&state.config.timeouts);
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/v1/repos", post(api::post_repo).get(api::list_repos))
        .route(
            "/api/v1/repos/{owner}/{name}",
            get(api::get_repo).delete(api::delete_repo),
        )
        .route("/api/v1/repos/{owner}/{name}/fork", post(api::fork_repo))
        .route("/api/v1/repos/{owner}/{name}/stats", get(api::repo_stats))
        .route("/api/v1/repos/{owner}/{name}/audit", get(api::repo_audit))
        .route(
            "/api/v1/tokens",
            post(api::post_token).get(api::list_tokens),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(api::delete_token),
        )
        .route("/api/openapi.json", get(api::openapi))
        .route("/{owner}/{repo}/info/refs", get(git::info_refs))
        .route("/{owner}/{repo}/git-upload-pack", post(git::upload_pack))
        .route("/{owner}/{repo}/git-receive-pack", post(git::receive_pack))
        .layer(axum::middleware::map_request_with_state(
            pace,
            body::pace_request_body,
        ))
        .with_state(state)
}
