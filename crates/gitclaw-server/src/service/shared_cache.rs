//! The shared metadata cache: Redis (`REDIS_URL`), used by every instance of a
//! deployment, off when unset.
//!
//! What it holds, each with a TTL and filled on a miss:
//! - a repository's advertisement (refs with their peeled tags), pack list and
//!   loose-object list, keyed by the repository's id **and its `cache_version`**.
//!   The database bumps that version in the transaction of every change to the
//!   refs, packs or loose objects, and every request reads its repository row
//!   (with the version) from the database. So a request that starts after a push
//!   committed asks for keys nothing filled before the push: it cannot be served
//!   a stale ref on any instance, whatever Redis did or missed meanwhile (a
//!   failed invalidation, a restart from an old snapshot). Entries of old
//!   versions are never read again and expire.
//! - token lookups, by the secret's hash, for `GITCLAW_REDIS_TOKEN_TTL_SECS`;
//!   a revocation deletes the entry after its database commit. An instance
//!   that cannot reach Redis then logs an error: other instances may accept the
//!   revoked token until the entry expires.
//!
//! The repository row itself is read from the database on every request: it is
//! the one read that carries the version, and a single indexed lookup.
//!
//! Redis down or slow: every call is bounded by `GITCLAW_REDIS_TIMEOUT_MS`; a
//! failure makes the instance go on without Redis (one warning), trying it
//! again after a second, and say so once when it answers again. No request
//! fails because of Redis.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use redis::aio::MultiplexedConnection;
use serde::{de::DeserializeOwned, Serialize};

use crate::metrics::Metrics;

/// The `cache` label of this cache's lookups.
const CACHE_NAME: &str = "metadata";

/// Key prefix; the number changes with the format of the values.
const PREFIX: &str = "gitclaw:v1:";

/// After a failure, Redis is left alone this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How the shared cache is reached.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub url: String,
    /// Lifetime of repository entries (they cannot go stale; this bounds memory).
    pub ttl: Duration,
    /// Lifetime of token lookups: how long a revoked token may still be taken
    /// by an instance that was not told.
    pub token_ttl: Duration,
    /// The longest any call may take before the request goes on without it.
    pub timeout: Duration,
}

/// The cache; `SharedCache::off()` when no Redis is configured.
pub struct SharedCache {
    redis: Option<Redis>,
    /// When this instance last recorded each token's use (so a cached token's
    /// old `last_used_at` does not make every request write to the database).
    touched: moka::sync::Cache<String, i64>,
}

struct Redis {
    client: redis::Client,
    settings: RedisSettings,
    /// The connection, dropped on a failure and made again on the next use.
    conn: Mutex<Option<MultiplexedConnection>>,
    /// Until when Redis is left alone after a failure.
    resting_until: Mutex<Option<Instant>>,
    /// A failure was reported and no success since.
    down: AtomicBool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("redis", &self.redis.as_ref().map(|r| &r.settings.url))
            .finish_non_exhaustive()
    }
}

/// A repository's entries are named by its id and version.
fn repo_key(what: &str, repo: &gitclaw_metadata::Repo) -> String {
    format!("{PREFIX}{what}:{}:{}", repo.id, repo.cache_version)
}

fn token_key(token_hash: &str) -> String {
    format!("{PREFIX}token:{token_hash}")
}

impl SharedCache {
    /// No shared cache: every lookup misses, nothing is stored.
    pub fn off() -> SharedCache {
        SharedCache {
            redis: None,
            touched: moka::sync::Cache::new(10_000),
        }
    }

    /// A cache on the Redis `settings` name. The URL is checked now; the server
    /// connects on first use (Redis need not be up when GitClaw starts).
    pub fn open(settings: RedisSettings, metrics: Arc<Metrics>) -> Result<SharedCache, String> {
        let client = redis::Client::open(settings.url.as_str()).map_err(|err| err.to_string())?;
        metrics.redis_up.set(1);
        Ok(SharedCache {
            redis: Some(Redis {
                client,
                settings,
                conn: Mutex::new(None),
                resting_until: Mutex::new(None),
                down: AtomicBool::new(false),
                metrics,
            }),
            touched: moka::sync::Cache::new(10_000),
        })
    }

    pub fn enabled(&self) -> bool {
        self.redis.is_some()
    }

    /// A repository entry (`what`: `refs`, `objects`) of its current version.
    pub async fn repo_entry<T: DeserializeOwned>(
        &self,
        what: &str,
        repo: &gitclaw_metadata::Repo,
    ) -> Option<T> {
        self.get(&repo_key(what, repo)).await
    }

    /// Store a repository entry read from the database under the version the
    /// caller read the repository at — only if that is still the version now.
    /// Then nothing changed the repository between the two reads of its row,
    /// so what was read in between is exactly that version's state. (Stored
    /// regardless, an entry read after a push committed would go under the old
    /// version, where it could meet another entry read before it: refs naming
    /// objects the pack list lacks.) The store itself is in the background.
    pub async fn put_repo_entry<T: Serialize>(
        &self,
        meta: &gitclaw_metadata::Metadata,
        what: &str,
        repo: &gitclaw_metadata::Repo,
        value: &T,
    ) {
        let Some(redis) = &self.redis else {
            return;
        };
        match meta.get_repo_by_id(&repo.id).await {
            Ok(Some(now)) if now.cache_version == repo.cache_version => {
                redis.put(repo_key(what, repo), value, redis.settings.ttl);
            }
            _ => {}
        }
    }

    pub async fn token(&self, token_hash: &str) -> Option<gitclaw_metadata::Token> {
        let mut token: gitclaw_metadata::Token = self.get(&token_key(token_hash)).await?;
        if let Some(at) = self.touched.get(&token.id) {
            token.last_used_at = token.last_used_at.max(Some(at));
        }
        Some(token)
    }

    pub fn put_token(&self, token_hash: &str, token: &gitclaw_metadata::Token) {
        if let Some(redis) = &self.redis {
            redis.put(token_key(token_hash), token, redis.settings.token_ttl);
        }
    }

    /// This instance recorded a use of token `id` at `at`.
    pub fn touched(&self, id: &str, at: i64) {
        self.touched.insert(id.to_string(), at);
    }

    /// Forget a token lookup (after its revocation committed). A failure is an
    /// error in the log: other instances may take the token until it expires.
    pub async fn forget_token(&self, token_hash: &str) {
        let Some(redis) = &self.redis else {
            return;
        };
        let key = token_key(token_hash);
        let done = redis
            .call("forget_token", |mut conn| async move {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
        if done.is_none() {
            tracing::error!(
                ttl_secs = redis.settings.token_ttl.as_secs(),
                "cannot remove a revoked token from the shared cache: other instances may accept it until its entry expires"
            );
        }
    }

    /// `Ok` when Redis answers (or none is configured), for `/readyz`.
    pub async fn ping(&self) -> Option<Result<(), String>> {
        let redis = self.redis.as_ref()?;
        let answer = redis
            .call("ping", |mut conn| async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .await;
        Some(match answer {
            Some(_) => Ok(()),
            None => Err("REDIS_UNAVAILABLE".into()),
        })
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let redis = self.redis.as_ref()?;
        let bytes = redis
            .call("get", |mut conn| async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut conn)
                    .await
            })
            .await
            .flatten();
        let value = bytes.and_then(|b| match serde_json::from_slice(&b) {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::warn!(key, error = %err, "unreadable shared cache entry; reading the database");
                None
            }
        });
        redis.metrics.cache_lookup(CACHE_NAME, value.is_some());
        value
    }
}

impl Redis {
    /// Run `op` on a connection within the timeout; `None` (and Redis rested)
    /// on any failure, or while it rests.
    async fn call<T, F, Fut>(&self, operation: &'static str, op: F) -> Option<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self
            .resting_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        let timeout = self.settings.timeout;
        let outcome = tokio::time::timeout(timeout, async {
            let conn = self.connection().await?;
            op(conn).await
        })
        .await;
        match outcome {
            Ok(Ok(value)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("the shared cache (Redis) answers again");
                    self.metrics.redis_up.set(1);
                }
                Some(value)
            }
            Ok(Err(err)) => {
                self.failed(operation, &err.to_string());
                None
            }
            Err(_) => {
                self.failed(
                    operation,
                    &format!("no answer within {} ms", timeout.as_millis()),
                );
                None
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(conn);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.settings.timeout))
            .set_response_timeout(Some(self.settings.timeout));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    fn failed(&self, operation: &'static str, error: &str) {
        self.metrics
            .redis_errors
            .with_label_values(&[operation])
            .inc();
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.resting_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + RETRY_AFTER);
        if !self.down.swap(true, Ordering::Relaxed) {
            self.metrics.redis_up.set(0);
            tracing::warn!(
                operation,
                error,
                "the shared cache (Redis) does not answer; serving from the database until it does"
            );
        }
    }

    /// `SET key value EX ttl` in the background.
    fn put<T: Serialize + ?Sized>(&self, key: String, value: &T, ttl: Duration) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        // Only on an open connection: a store is worth no reconnect of its own.
        let Some(mut conn) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        let ttl = ttl.as_secs().max(1);
        let timeout = self.settings.timeout;
        let errors = self.metrics.redis_errors.with_label_values(&["set"]);
        tokio::spawn(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(bytes).arg("EX").arg(ttl);
            let set = cmd.query_async::<()>(&mut conn);
            if !matches!(tokio::time::timeout(timeout, set).await, Ok(Ok(()))) {
                errors.inc();
            }
        });
    }
}
