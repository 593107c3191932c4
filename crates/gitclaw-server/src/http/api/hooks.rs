//! `/api/v1/repos/{owner}/{name}/hooks`: a repository's webhooks and their
//! deliveries. Every route needs an admin token or the admin scope on the
//! repository.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use gitclaw_metadata::{Delivery, Webhook};
use serde::{Deserialize, Serialize};

use super::{admin_repo, bad_query, ApiError};
use crate::{app::AppState, service::hooks};

const DOING: &str = "managing the webhooks of";

/// A webhook to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHook {
    /// Where deliveries are POSTed: `http://` or `https://`.
    pub url: String,
    /// Signs each delivery: `X-GitClaw-Signature-256: sha256=<hex HMAC-SHA256
    /// of the body>`. Never shown again. None: unsigned.
    #[serde(default)]
    pub secret: Option<String>,
    /// The events to deliver; `push` (the default) is the one there is.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// A webhook (its secret is not shown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Deliveries carry a signature.
    pub signed: bool,
    pub created_at: i64,
}

impl From<Webhook> for HookView {
    fn from(hook: Webhook) -> Self {
        HookView {
            id: hook.id,
            url: hook.url,
            events: hook.events,
            signed: hook.signed,
            created_at: hook.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HookList {
    pub hooks: Vec<HookView>,
}

/// One delivery of a webhook. Times are unix seconds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Also sent as `X-GitClaw-Delivery`, the same on every attempt.
    pub id: i64,
    /// `ping` (sent when the webhook is created) or `push`.
    pub event: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: u64,
    /// When a pending delivery is tried next.
    pub next_attempt_at: i64,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            finished_at: d.finished_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    pub limit: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/repos/{owner}/{name}/hooks", description = "Needs an admin token, or a token with the admin scope on this repository. A `ping` delivery goes out at once.", params(("owner" = String, Path), ("name" = String, Path)), request_body = CreateHook, responses((status = 201, body = HookView), (status = 400, body = ApiError, description = "a bad URL or event, or as many webhooks as a repository may have"), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn create_hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    payload: Result<Json<CreateHook>, JsonRejection>,
) -> Result<(StatusCode, Json<HookView>), ApiError> {
    let (caller, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    let Json(req) = payload?;
    let events = req.events.unwrap_or_else(|| vec!["push".to_string()]);
    let hook = hooks::create(
        &state,
        &repo,
        &req.url,
        req.secret.as_deref().unwrap_or(""),
        &events,
        &caller.actor(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(hook.into())))
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/hooks", description = "Needs an admin token, or a token with the admin scope on this repository.", params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = HookList), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn list_hooks(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<Json<HookList>, ApiError> {
    let (_, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    let hooks = state.meta.list_webhooks(&repo.id).await?;
    Ok(Json(HookList {
        hooks: hooks.into_iter().map(HookView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/repos/{owner}/{name}/hooks/{id}", description = "Needs an admin token, or a token with the admin scope on this repository. Deliveries not yet made are dropped.", params(("owner" = String, Path), ("name" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, id)): axum::extract::Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (caller, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    hooks::delete(&state, &repo, &id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries/{delivery}/redeliver", description = "Needs an admin token, or a token with the admin scope on this repository. Queues a new delivery of the same event and payload, due now.", params(("owner" = String, Path), ("name" = String, Path), ("id" = String, Path), ("delivery" = i64, Path)), responses((status = 201, body = DeliveryView), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn redeliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, id, delivery)): axum::extract::Path<(
        String,
        String,
        String,
        String,
    )>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let (_, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    let again = hooks::redeliver(&state, &repo, &id, &delivery).await?;
    Ok((StatusCode::CREATED, Json(again.into())))
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries", description = "Needs an admin token, or a token with the admin scope on this repository. Delivered and failed deliveries are kept for 7 days.", params(("owner" = String, Path), ("name" = String, Path), ("id" = String, Path), ("limit" = Option<u32>, Query)), responses((status = 200, body = DeliveryList), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, id)): axum::extract::Path<(String, String, String)>,
    query: Result<axum::extract::Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let (_, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let deliveries = hooks::deliveries(&state, &repo, &id, limit).await?;
    Ok(Json(DeliveryList {
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    }))
}
