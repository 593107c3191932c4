//! The HTTP surface: git smart-HTTP routes, the REST API and operational
//! endpoints. Handlers extract, authorize, call one service and render its
//! outcome; nothing here decides how a git operation is done.

pub mod api;
pub mod body;
pub mod git;
pub mod lfs;
pub mod render;

use axum::{
    extract::Request,
    http::HeaderValue,
    middleware::Next,
    response::Response,
    routing::{get, post},
    Router,
};
use tracing::Instrument;

use crate::{app::AppState, error::RequestId};

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Every route of the server (`/metrics` too, unless it has a listener of
/// its own: [`metrics_router`]).
pub fn router(state: AppState) -> Router {
    let pace = body::BodyPace::from(&state.config.timeouts);
    let mut routes = operational();
    if state.config.metrics_listen.is_none() {
        routes = routes.route("/metrics", get(metrics));
    }
    routes
        .route("/api/v1/repos", post(api::post_repo).get(api::list_repos))
        .route(
            "/api/v1/repos/{owner}/{name}",
            get(api::get_repo)
                .patch(api::update_repo)
                .delete(api::delete_repo),
        )
        .route("/api/v1/repos/{owner}/{name}/fork", post(api::fork_repo))
        .route("/api/v1/repos/{owner}/{name}/stats", get(api::repo_stats))
        .route("/api/v1/repos/{owner}/{name}/audit", get(api::repo_audit))
        .route(
            "/api/v1/repos/{owner}/{name}/archive/{*file}",
            get(api::repo_archive),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/raw/{*path}",
            get(api::repo_raw),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/refs",
            get(api::repo_refs).post(api::update_refs),
        )
        .route("/api/v1/repos/{owner}/{name}/tree", get(api::repo_tree))
        .route(
            "/api/v1/repos/{owner}/{name}/tree/{*path}",
            get(api::repo_tree_path),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/commits",
            get(api::repo_commits),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/commits/{*revision}",
            get(api::repo_commit),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/compare/{*spec}",
            get(api::repo_compare),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/hooks",
            post(api::create_hook).get(api::list_hooks),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/hooks/{id}",
            axum::routing::delete(api::delete_hook),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries",
            get(api::list_deliveries),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries/{delivery}/redeliver",
            post(api::redeliver),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/protected-refs",
            post(api::create_protected_ref).get(api::list_protected_refs),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/protected-refs/{id}",
            axum::routing::delete(api::delete_protected_ref),
        )
        .route(
            "/api/v1/tokens",
            post(api::post_token).get(api::list_tokens),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(api::delete_token),
        )
        .route("/api/v1/migrations", get(api::list_migrations))
        .route("/api/v1/migrations/{owner}/{name}", get(api::get_migration))
        .route("/api/openapi.json", get(api::openapi))
        .route("/{owner}/{repo}/info/refs", get(git::info_refs))
        .route("/{owner}/{repo}/git-upload-pack", post(git::upload_pack))
        .route("/{owner}/{repo}/git-receive-pack", post(git::receive_pack))
        .route("/{owner}/{repo}/info/bundles/{file}", get(git::bundle))
        .route("/{owner}/{repo}/info/lfs/objects/batch", post(lfs::batch))
        .route(
            "/{owner}/{repo}/info/lfs/objects/{oid}",
            get(lfs::download).put(lfs::upload),
        )
        .route("/{owner}/{repo}/info/lfs/verify", post(lfs::verify))
        .route(
            "/{owner}/{repo}/info/lfs/locks",
            get(lfs::list_locks).post(lfs::create_lock),
        )
        .route(
            "/{owner}/{repo}/info/lfs/locks/verify",
            post(lfs::verify_locks),
        )
        .route(
            "/{owner}/{repo}/info/lfs/locks/{id}/unlock",
            post(lfs::unlock),
        )
        .layer(axum::middleware::map_request_with_state(
            pace,
            body::pace_request_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            with_request_id,
        ))
        .with_state(state)
}

/// Where the migrations stand, from the database (a migration runs in its
/// own process, `gitclaw migrate`; what it did is known here through its rows).
async fn report_migrations(state: &AppState) {
    let statuses = match state.meta.list_migration_status().await {
        Ok(statuses) => statuses,
        Err(err) => {
            tracing::warn!(error = %crate::error::chain(&err), "metrics: cannot read the migrations");
            return;
        }
    };
    let m = &state.metrics;
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.migration_repositories.reset();
    let (mut total, mut copied, mut corrupt, mut batches) = (0, 0, 0, 0);
    for status in &statuses {
        m.migration_repositories
            .with_label_values(&[status.state.as_str()])
            .inc();
        total += status.objects_total;
        copied += status.objects_copied;
        corrupt += status.corrupt_rows;
        if status.is_running() {
            batches += status.batches_in_flight;
        }
    }
    m.migration_rows
        .with_label_values(&["total"])
        .set(gauge(total));
    m.migration_rows
        .with_label_values(&["copied"])
        .set(gauge(copied));
    m.migration_rows
        .with_label_values(&["corrupt"])
        .set(gauge(corrupt));
    m.migration_batches_in_flight.set(gauge(batches));
}

/// The routes of `GITCLAW_METRICS_LISTEN`: `/metrics` and the probes, so a
/// scraper and a load balancer's health checks need not reach the git port.
pub fn metrics_router(state: AppState) -> Router {
    operational()
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            with_request_id,
        ))
        .with_state(state)
}

/// Liveness and readiness, on every listener.
fn operational() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
}

/// `GET /metrics`: every metric in the Prometheus text format; the caches'
/// sizes, the database pool and the largest repositories' sizes are taken at
/// the moment of the scrape (the sizes from the database, never the store).
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !crate::auth::may_scrape(&state, &headers) {
        let mut response = render::plain(
            axum::http::StatusCode::UNAUTHORIZED,
            "/metrics needs the GITCLAW_METRICS_TOKEN as a bearer token",
        );
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"GitClaw metrics\""),
        );
        return response;
    }
    state.packs.report().await;
    state.responses.report();
    state.metrics.report_object_cache(&state.objects);
    let m = &state.metrics;
    let (open, idle) = state.meta.pool_connections();
    let in_use = i64::from(open).saturating_sub(i64::try_from(idle).unwrap_or(i64::MAX));
    m.db_connections.with_label_values(&["in_use"]).set(in_use);
    m.db_connections
        .with_label_values(&["idle"])
        .set(i64::try_from(idle).unwrap_or(i64::MAX));
    if state.config.metrics_repos > 0 {
        match state.meta.largest_repos(state.config.metrics_repos).await {
            Ok(repos) => {
                // Deleted or overtaken repositories drop out of the export.
                m.repo_objects.reset();
                m.repo_bytes.reset();
                m.repo_lfs_objects.reset();
                m.repo_lfs_bytes.reset();
                for repo in repos {
                    let name = format!("{}/{}", repo.owner, repo.name);
                    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                    m.repo_objects
                        .with_label_values(&[&name])
                        .set(gauge(repo.objects));
                    m.repo_bytes
                        .with_label_values(&[&name])
                        .set(gauge(repo.bytes));
                    if repo.lfs_objects > 0 {
                        m.repo_lfs_objects
                            .with_label_values(&[&name])
                            .set(gauge(repo.lfs_objects));
                        m.repo_lfs_bytes
                            .with_label_values(&[&name])
                            .set(gauge(repo.lfs_bytes));
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "metrics: cannot read repository sizes")
            }
        }
    }
    match state.meta.lfs_usage_total().await {
        Ok(usage) => {
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            m.lfs_objects.set(gauge(usage.objects));
            m.lfs_bytes.set(gauge(usage.bytes));
        }
        Err(err) => {
            tracing::warn!(error = %crate::error::chain(&err), "metrics: cannot read the LFS objects' sizes")
        }
    }
    if state.legacy_table {
        report_migrations(&state).await;
    }
    let mut response = Response::new(axum::body::Body::from(state.metrics.render()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Give the request an id (a sane `X-Request-Id` from the client is kept),
/// run it inside a span carrying that id and as [`RequestId::current`], send
/// the id back, and count the answer by route template and status.
async fn with_request_id(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(RequestId::generate);
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{} {route}", request.method()),
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        // Continue the client's trace when it sent one.
        let _ = span.set_parent(crate::telemetry::remote_context(request.headers()));
    }
    let mut response = id.clone().scope(next.run(request)).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    state
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}
