//! Webhooks: URLs told of a repository's events, and the deliveries owed to
//! them.
//!
//! For: the outbox. A push's deliveries are inserted in the push's own
//! transaction ([`enqueue`], called by `commit_push`), so a delivery exists
//! exactly when the refs moved, and it outlives a crash or restart until it is
//! delivered or given up. Deliverers on any number of instances share the
//! work: [`Metadata::claim_deliveries`] takes due deliveries under a lease
//! (on PostgreSQL skipping rows another instance is claiming), and
//! [`Metadata::finish_delivery`] records the outcome. A delivery whose
//! deliverer died is taken again once its lease runs out: at least once.
//!
//! Not for: sending anything (the server does), or deciding how often to
//! retry (the caller passes when the next attempt is due).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{self, AuditAction};
use crate::repos::lock_repo;
use crate::util::{get_i64, get_str, get_u64, now_secs};
use crate::{Backend, Error, Metadata, Result};

/// The events a webhook may ask for.
pub const WEBHOOK_EVENTS: &[&str] = &["push"];

/// The event every new webhook is sent first, to show it is reached.
pub const PING_EVENT: &str = "ping";

/// A repository's webhook (its secret is never read back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: String,
    pub repo_id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Whether deliveries carry a signature (a secret was given).
    pub signed: bool,
    pub created_at: i64,
}

/// A webhook to create.
#[derive(Clone, Debug)]
pub struct NewWebhook<'a> {
    pub repo_id: &'a str,
    pub url: &'a str,
    /// Empty: deliveries are not signed.
    pub secret: &'a str,
    /// Names from [`WEBHOOK_EVENTS`].
    pub events: &'a [String],
    /// Who asks, for the audit log.
    pub actor: &'a str,
    /// How many webhooks the repository may have at most.
    pub max_per_repo: usize,
}

/// A delivery as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// In the order deliveries were queued.
    pub id: i64,
    pub hook_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts started so far.
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

/// A delivery a deliverer has claimed: what to send where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub hook_id: String,
    pub url: String,
    /// Empty: not signed.
    pub secret: String,
    pub event: String,
    pub payload: String,
    /// Attempts started, this one included.
    pub attempts: u64,
}

/// How an attempt at a delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered with success.
    Delivered { status: u16 },
    /// It failed; try again at `at` (unix seconds).
    Retry {
        status: Option<u16>,
        error: String,
        at: i64,
    },
    /// It failed and will not be tried again.
    Failed { status: Option<u16>, error: String },
}

fn webhook_from_row(row: &AnyRow) -> Result<Webhook> {
    let events = get_str(row, "events")?;
    Ok(Webhook {
        id: get_str(row, "id")?,
        repo_id: get_str(row, "repo_id")?,
        url: get_str(row, "url")?,
        events: events.split(',').map(str::to_owned).collect(),
        signed: !get_str(row, "secret")?.is_empty(),
        created_at: get_i64(row, "created_at")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    let last_status = row
        .try_get::<Option<i64>, _>("last_status")?
        .map(|s| {
            u16::try_from(s).map_err(|_| {
                Error::InvalidData(format!(
                    "webhook_deliveries.last_status {s} is not a status"
                ))
            })
        })
        .transpose()?;
    Ok(Delivery {
        id: get_i64(row, "id")?,
        hook_id: get_str(row, "hook_id")?,
        event: get_str(row, "event")?,
        status: get_str(row, "status")?,
        attempts: get_u64(row, "attempts")?,
        next_attempt_at: get_i64(row, "next_attempt_at")?,
        last_status,
        last_error: row.try_get::<Option<String>, _>("last_error")?,
        created_at: get_i64(row, "created_at")?,
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?,
    })
}

/// Queue `payload` (an `event`) for every webhook of the repository that asks
/// for it, due now. Returns how many deliveries were queued.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    repo_id: &str,
    event: &str,
    payload: &serde_json::Value,
) -> Result<usize> {
    let hooks = sqlx::query("SELECT id, events FROM webhooks WHERE repo_id = $1")
        .bind(repo_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut wanted = Vec::new();
    for row in &hooks {
        if get_str(row, "events")?.split(',').any(|e| e == event) {
            wanted.push(get_str(row, "id")?);
        }
    }
    if wanted.is_empty() {
        return Ok(0);
    }
    let payload = serde_json::to_string(payload)
        .map_err(|e| Error::InvalidInput(format!("webhook payload is not serialisable: {e}")))?;
    for hook_id in &wanted {
        insert_delivery(conn, hook_id, event, &payload).await?;
    }
    Ok(wanted.len())
}

async fn insert_delivery(
    conn: &mut AnyConnection,
    hook_id: &str,
    event: &str,
    payload: &str,
) -> Result<()> {
    let now = now_secs();
    sqlx::query(
        "INSERT INTO webhook_deliveries \
         (hook_id, event, payload, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
    )
    .bind(hook_id)
    .bind(event)
    .bind(payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Metadata {
    /// Create a webhook and queue its `ping` delivery (with `ping` as its
    /// payload), in one transaction with its audit event.
    ///
    /// Errors: [`Error::NotFound`] if the repository does not exist,
    /// [`Error::InvalidInput`] for an event not in [`WEBHOOK_EVENTS`], no
    /// event, or a repository that has `max_per_repo` webhooks already.
    pub async fn create_webhook(
        &self,
        new: NewWebhook<'_>,
        ping: &serde_json::Value,
    ) -> Result<Webhook> {
        self.timed("create_webhook", async {
            if new.events.is_empty() {
                return Err(Error::InvalidInput("a webhook needs an event".into()));
            }
            if let Some(bad) = new
                .events
                .iter()
                .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
            {
                return Err(Error::InvalidInput(format!(
                    "unknown webhook event '{bad}' (known: {})",
                    WEBHOOK_EVENTS.join(", ")
                )));
            }
            let mut events: Vec<String> = new.events.to_vec();
            events.sort();
            events.dedup();
            let mut tx = self.begin_write().await?;
            let repo = lock_repo(&mut tx, new.repo_id).await?;
            let count = sqlx::query("SELECT COUNT(*) AS n FROM webhooks WHERE repo_id = $1")
                .bind(new.repo_id)
                .fetch_one(&mut *tx)
                .await?;
            if get_u64(&count, "n")? >= new.max_per_repo as u64 {
                return Err(Error::InvalidInput(format!(
                    "{}/{} has {} webhooks, the most a repository may have",
                    repo.owner, repo.name, new.max_per_repo
                )));
            }
            let hook = Webhook {
                id: uuid::Uuid::new_v4().to_string(),
                repo_id: new.repo_id.to_owned(),
                url: new.url.to_owned(),
                events,
                signed: !new.secret.is_empty(),
                created_at: now_secs(),
            };
            sqlx::query(
                "INSERT INTO webhooks (id, repo_id, url, secret, events, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&hook.id)
            .bind(&hook.repo_id)
            .bind(&hook.url)
            .bind(new.secret)
            .bind(hook.events.join(","))
            .bind(hook.created_at)
            .execute(&mut *tx)
            .await?;
            let ping = serde_json::to_string(ping)
                .map_err(|e| Error::InvalidInput(format!("ping is not serialisable: {e}")))?;
            insert_delivery(&mut tx, &hook.id, PING_EVENT, &ping).await?;
            let details =
                serde_json::json!({ "hook": hook.id, "url": hook.url, "events": hook.events });
            audit::append_for(&mut tx, &repo, AuditAction::HookCreate, new.actor, &details).await?;
            tx.commit().await?;
            Ok(hook)
        })
        .await
    }

    /// The repository's webhooks, by creation time (to the second), then URL.
    pub async fn list_webhooks(&self, repo_id: &str) -> Result<Vec<Webhook>> {
        self.timed("list_webhooks", async {
            let rows = sqlx::query(
                "SELECT id, repo_id, url, secret, events, created_at FROM webhooks \
                 WHERE repo_id = $1 ORDER BY created_at, url, id",
            )
            .bind(repo_id)
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(webhook_from_row).collect()
        })
        .await
    }

    /// Delete a webhook of the repository, and the deliveries owed to it;
    /// audited. Whether there was one.
    pub async fn delete_webhook(&self, repo_id: &str, id: &str, actor: &str) -> Result<bool> {
        self.timed("delete_webhook", async {
            let mut tx = self.begin_write().await?;
            let repo = lock_repo(&mut tx, repo_id).await?;
            let deleted = sqlx::query("DELETE FROM webhooks WHERE repo_id = $1 AND id = $2")
                .bind(repo_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            let details = serde_json::json!({ "hook": id });
            audit::append_for(&mut tx, &repo, AuditAction::HookDelete, actor, &details).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// The newest `limit` deliveries of a webhook of the repository, newest
    /// first; `None` if the repository has no such webhook.
    pub async fn list_deliveries(
        &self,
        repo_id: &str,
        hook_id: &str,
        limit: u32,
    ) -> Result<Option<Vec<Delivery>>> {
        self.timed("list_deliveries", async {
            let hook = sqlx::query("SELECT id FROM webhooks WHERE repo_id = $1 AND id = $2")
                .bind(repo_id)
                .bind(hook_id)
                .fetch_optional(self.pool())
                .await?;
            if hook.is_none() {
                return Ok(None);
            }
            let rows = sqlx::query(
                "SELECT id, hook_id, event, status, attempts, next_attempt_at, last_status, \
                 last_error, created_at, finished_at FROM webhook_deliveries \
                 WHERE hook_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(hook_id)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(delivery_from_row)
                .collect::<Result<_>>()
                .map(Some)
        })
        .await
    }

    /// Claim up to `limit` deliveries due at `now`, oldest due first, until
    /// `lease_until`: no other deliverer takes them before then, unless this
    /// one records an outcome first. Each claim counts as an attempt.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        self.timed("claim_deliveries", async {
            // PostgreSQL: rows another deliverer is claiming are skipped, and
            // the outer condition is checked again on the committed row.
            macro_rules! claim {
                ($lock:literal) => {
                    concat!(
                        "UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = attempts + 1 ",
                        "WHERE status = 'pending' AND next_attempt_at <= $2 AND id IN (",
                        "SELECT id FROM webhook_deliveries WHERE status = 'pending' ",
                        "AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3",
                        $lock,
                        ") RETURNING id, hook_id, event, payload, attempts"
                    )
                };
            }
            let sql = match self.backend {
                Backend::Postgres => claim!(" FOR UPDATE SKIP LOCKED"),
                Backend::Sqlite => claim!(""),
            };
            // Looked for first without a write transaction: deliverers ask
            // every few seconds, and mostly nothing is due.
            let any = sqlx::query(
                "SELECT id FROM webhook_deliveries WHERE status = 'pending' \
                 AND next_attempt_at <= $1 LIMIT 1",
            )
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
            if any.is_none() {
                return Ok(Vec::new());
            }
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(sql)
                .bind(lease_until)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
            let mut due = Vec::with_capacity(rows.len());
            for row in &rows {
                let hook_id = get_str(row, "hook_id")?;
                let hook = sqlx::query("SELECT url, secret FROM webhooks WHERE id = $1")
                    .bind(&hook_id)
                    .fetch_one(&mut *tx)
                    .await?;
                due.push(DueDelivery {
                    id: get_i64(row, "id")?,
                    url: get_str(&hook, "url")?,
                    secret: get_str(&hook, "secret")?,
                    hook_id,
                    event: get_str(row, "event")?,
                    payload: get_str(row, "payload")?,
                    attempts: get_u64(row, "attempts")?,
                });
            }
            tx.commit().await?;
            due.sort_by_key(|d| d.id);
            Ok(due)
        })
        .await
    }

    /// Record how an attempt at delivery `id` ended, at `now`. A delivery
    /// deleted meanwhile (with its webhook) is no error.
    pub async fn finish_delivery(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: i64,
    ) -> Result<()> {
        self.timed("finish_delivery", async {
            let (status, next, last_status, error, finished) = match outcome {
                DeliveryOutcome::Delivered { status } => {
                    ("delivered", now, Some(*status), None, Some(now))
                }
                DeliveryOutcome::Retry { status, error, at } => {
                    ("pending", *at, *status, Some(error.as_str()), None)
                }
                DeliveryOutcome::Failed { status, error } => {
                    ("failed", now, *status, Some(error.as_str()), Some(now))
                }
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, \
                 last_status = $3, last_error = $4, finished_at = $5 WHERE id = $6",
            )
            .bind(status)
            .bind(next)
            .bind(last_status.map(i64::from))
            .bind(error)
            .bind(finished)
            .bind(id)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Queue delivery `id` of a webhook of the repository again: a new
    /// delivery of the same event and payload, due now (after a receiver's
    /// outage outlasted the retries, say). `None` if there is no such
    /// delivery.
    pub async fn redeliver(
        &self,
        repo_id: &str,
        hook_id: &str,
        id: i64,
    ) -> Result<Option<Delivery>> {
        self.timed("redeliver", async {
            let now = now_secs();
            let row = sqlx::query(
                "INSERT INTO webhook_deliveries \
                 (hook_id, event, payload, status, attempts, next_attempt_at, created_at) \
                 SELECT d.hook_id, d.event, d.payload, 'pending', 0, $1, $1 \
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.hook_id \
                 WHERE d.id = $2 AND d.hook_id = $3 AND w.repo_id = $4 \
                 RETURNING id, hook_id, event, status, attempts, next_attempt_at, last_status, \
                 last_error, created_at, finished_at",
            )
            .bind(now)
            .bind(id)
            .bind(hook_id)
            .bind(repo_id)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(delivery_from_row).transpose()
        })
        .await
    }

    /// Delete delivered and failed deliveries that finished before `before`.
    /// How many went.
    pub async fn prune_deliveries(&self, before: i64) -> Result<u64> {
        self.timed("prune_deliveries", async {
            Ok(sqlx::query(
                "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < $1",
            )
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
        })
        .await
    }
}
