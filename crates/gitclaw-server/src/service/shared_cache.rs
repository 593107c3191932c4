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
//!
//! In front of Redis, and without it, each instance keeps the repository
//! entries it read or stored in its own memory (`GITCLAW_METADATA_CACHE_BYTES`),
//! by the same keys: a repository's requests then read its refs and lists from
//! the database once per change to them, not two or three times a fetch (the
//! advertisement, each negotiation round and the pack request each want them).
//! Keyed by version, these cannot go stale either: a push on any instance bumps
//! the version every later request reads with the repository row.

use std::{
    any::Any,
    path::PathBuf,
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

/// The `cache` label of the lookups in an instance's own memory.
const LOCAL_NAME: &str = "metadata_local";

/// Key prefix; the number changes with the format of the values.
const PREFIX: &str = "gitclaw:v1:";

/// After a failure, Redis is left alone this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A connection whose setup and each answer take at most `timeout`.
async fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

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
    /// For a `rediss://` URL: PEM of the CA the server's certificate must
    /// chain to, trusted instead of the system's.
    pub ca_cert: Option<PathBuf>,
    /// For a `rediss://` URL: PEM files of the certificate and key to present
    /// to a server that asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl RedisSettings {
    /// The client; nothing is sent yet.
    fn client(&self) -> Result<redis::Client, String> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
        };
        let client = match (&self.ca_cert, &self.client_cert) {
            (None, None) => redis::Client::open(self.url.as_str()),
            (ca, client) => {
                let client_tls = match client {
                    Some((cert, key)) => Some(redis::ClientTlsConfig {
                        client_cert: read(cert)?,
                        client_key: read(key)?,
                    }),
                    None => None,
                };
                let certificates = redis::TlsCertificates {
                    client_tls,
                    root_cert: ca.as_ref().map(read).transpose()?,
                };
                redis::Client::build_with_tls(self.url.as_str(), certificates)
            }
        };
        client.map_err(|err| err.to_string())
    }

    /// Connect and `PING`, waiting at least `at_least` (for `gitclaw check`:
    /// the error says why Redis cannot be used).
    pub async fn reach(&self, at_least: Duration) -> Result<(), String> {
        let mut conn = connect(&self.client()?, self.timeout.max(at_least))
            .await
            .map_err(|err| err.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|err| err.to_string())
    }
}

/// The cache: Redis when configured, and the entries this instance read in its
/// own memory unless that is given no bytes.
pub struct SharedCache {
    redis: Option<Redis>,
    local: Option<Local>,
    /// When this instance last recorded each token's use (so a cached token's
    /// old `last_used_at` does not make every request write to the database).
    touched: moka::sync::Cache<String, i64>,
}

/// Repository entries in this instance's memory, by the keys Redis has them
/// under (so by version).
struct Local {
    entries: moka::sync::Cache<String, LocalEntry>,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
struct LocalEntry {
    value: Arc<dyn Any + Send + Sync>,
    bytes: u32,
}

/// About how many bytes of memory a cached value takes: what bounds the
/// instance's own layer.
pub trait Weigh {
    fn weigh(&self) -> usize;
}

impl Local {
    fn new(bytes: u64, metrics: Arc<Metrics>) -> Option<Local> {
        if bytes == 0 {
            return None;
        }
        metrics
            .cache_capacity
            .with_label_values(&[LOCAL_NAME])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        let entries = moka::sync::Cache::builder()
            // Recency decides: the default frequency-based admission could refuse
            // the entries of a repository's new version, read once so far.
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .max_capacity(bytes)
            .weigher(|_, entry: &LocalEntry| entry.bytes)
            .eviction_listener({
                let metrics = metrics.clone();
                move |_, _, cause: moka::notification::RemovalCause| {
                    if cause.was_evicted() {
                        metrics
                            .cache_evictions
                            .with_label_values(&[LOCAL_NAME])
                            .inc();
                    }
                }
            })
            .build();
        Some(Local { entries, metrics })
    }

    /// The entry, shared with every request reading it (a repository's refs
    /// may be 100k names: no request copies them).
    fn get<T: Send + Sync + 'static>(&self, key: &str) -> Option<Arc<T>> {
        let value = self
            .entries
            .get(key)
            .and_then(|entry| entry.value.downcast::<T>().ok());
        self.metrics.cache_lookup(LOCAL_NAME, value.is_some());
        value
    }

    fn put<T: Weigh + Send + Sync + 'static>(&self, key: String, value: Arc<T>) {
        let bytes = u32::try_from(key.len() + value.weigh()).unwrap_or(u32::MAX);
        self.entries.insert(key, LocalEntry { value, bytes });
        self.entries.run_pending_tasks();
        self.metrics
            .cache_bytes
            .with_label_values(&[LOCAL_NAME])
            .set(i64::try_from(self.entries.weighted_size()).unwrap_or(i64::MAX));
    }
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
    /// No Redis; `local_bytes` of this instance's memory for repository entries
    /// (`0`: every lookup misses, nothing is stored).
    pub fn off(local_bytes: u64, metrics: Arc<Metrics>) -> SharedCache {
        SharedCache {
            redis: None,
            local: Local::new(local_bytes, metrics),
            touched: moka::sync::Cache::new(10_000),
        }
    }

    /// A cache on the Redis `settings` name, in front of it `local_bytes` of
    /// this instance's memory. The URL is checked now; the server connects on
    /// first use (Redis need not be up when GitClaw starts).
    pub fn open(
        settings: RedisSettings,
        local_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Result<SharedCache, String> {
        let client = settings.client()?;
        metrics.redis_up.set(1);
        Ok(SharedCache {
            local: Local::new(local_bytes, metrics.clone()),
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

    /// A repository entry (`what`: `refs`, `objects`) of its current version:
    /// from this instance's memory, else from Redis (and then kept in memory).
    pub async fn repo_entry<T>(&self, what: &str, repo: &gitclaw_metadata::Repo) -> Option<Arc<T>>
    where
        T: DeserializeOwned + Weigh + Send + Sync + 'static,
    {
        let key = repo_key(what, repo);
        if let Some(value) = self.local.as_ref().and_then(|local| local.get(&key)) {
            return Some(value);
        }
        let value: Arc<T> = Arc::new(self.get(&key).await?);
        if let Some(local) = &self.local {
            local.put(key, value.clone());
        }
        Some(value)
    }

    /// Store a repository entry read from the database under the version the
    /// caller read the repository at — only if that is still the version now.
    /// Then nothing changed the repository between the two reads of its row,
    /// so what was read in between is exactly that version's state. (Stored
    /// regardless, an entry read after a push committed would go under the old
    /// version, where it could meet another entry read before it: refs naming
    /// objects the pack list lacks.) Redis's store is in the background.
    pub async fn put_repo_entry<T>(
        &self,
        meta: &gitclaw_metadata::Metadata,
        what: &str,
        repo: &gitclaw_metadata::Repo,
        value: &Arc<T>,
    ) where
        T: Serialize + Weigh + Send + Sync + 'static,
    {
        if self.redis.is_none() && self.local.is_none() {
            return;
        }
        match meta.get_repo_by_id(&repo.id).await {
            Ok(Some(now)) if now.cache_version == repo.cache_version => {
                let key = repo_key(what, repo);
                if let Some(local) = &self.local {
                    local.put(key.clone(), value.clone());
                }
                if let Some(redis) = &self.redis {
                    redis.put(key, &**value, redis.settings.ttl);
                }
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
        let conn = connect(&self.client, self.settings.timeout).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use gitclaw_metadata::{Metadata, PushCommit, RefUpdate, Repo};
    use gitclaw_pack::ObjectId;

    /// Refs as a test stores them: names.
    #[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Names(Vec<String>);

    impl Weigh for Names {
        fn weigh(&self) -> usize {
            self.0.iter().map(|n| 24 + n.len()).sum()
        }
    }

    async fn repository(dir: &std::path::Path) -> (Metadata, Repo) {
        let url = format!("sqlite://{}", dir.join("meta.db").display());
        let meta = Metadata::connect(&url).await.unwrap();
        let repo = meta
            .create_repo("ada", "lists", false, "test")
            .await
            .unwrap();
        (meta, repo)
    }

    /// Set `refs/heads/main` to an id made of `n`: a change of the refs, which
    /// bumps the repository's version.
    async fn push(meta: &Metadata, repo: &Repo, old: Option<u8>, new: u8) {
        let id = |n: u8| ObjectId::from_bytes_or_panic(&[n; 20]);
        let results = meta
            .commit_push(PushCommit {
                repo_id: repo.id.clone(),
                updates: vec![RefUpdate {
                    name: "refs/heads/main".into(),
                    old: old.map(id),
                    new: Some(id(new)),
                }],
                atomic: true,
                pack: None,
                loose: Vec::new(),
                actor: "test".into(),
                details: serde_json::Value::Null,
                pack_closure: None,
                push_options: Vec::new(),
                ref_details: Default::default(),
            })
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.is_applied()), "{results:?}");
    }

    #[tokio::test]
    async fn an_instance_keeps_what_it_read_for_that_version_only() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, repo) = repository(dir.path()).await;
        let metrics = Arc::new(Metrics::new());
        let cache = SharedCache::off(1 << 20, metrics);
        let names = Arc::new(Names(vec!["refs/heads/main".into()]));

        assert_eq!(cache.repo_entry::<Names>("refs", &repo).await, None);
        cache.put_repo_entry(&meta, "refs", &repo, &names).await;
        let found = cache.repo_entry::<Names>("refs", &repo).await;
        assert_eq!(
            found,
            Some(names.clone()),
            "read again without the database"
        );
        assert!(
            Arc::ptr_eq(&found.unwrap(), &names),
            "requests share the entry, not copies of it"
        );
        assert_eq!(
            cache.repo_entry::<Names>("objects", &repo).await,
            None,
            "another entry of the repository"
        );

        // A change: requests read the row with the new version and find nothing.
        push(&meta, &repo, None, 1).await;
        let now = meta.get_repo_by_id(&repo.id).await.unwrap().unwrap();
        assert_ne!(now.cache_version, repo.cache_version);
        assert_eq!(cache.repo_entry::<Names>("refs", &now).await, None);

        // Read at a version a change committed after: not kept under it (what
        // was read may be the newer version's), nor under the newer one.
        push(&meta, &repo, Some(1), 2).await;
        let newer = meta.get_repo_by_id(&repo.id).await.unwrap().unwrap();
        cache.put_repo_entry(&meta, "refs", &now, &names).await;
        assert_eq!(cache.repo_entry::<Names>("refs", &now).await, None);
        assert_eq!(cache.repo_entry::<Names>("refs", &newer).await, None);
    }

    #[tokio::test]
    async fn the_instance_layer_holds_no_more_than_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, repo) = repository(dir.path()).await;
        let big = Arc::new(Names(
            (0..1000).map(|n| format!("refs/tags/v{n}")).collect(),
        ));
        let small = Arc::new(Names(vec!["refs/heads/main".into()]));

        let cache = SharedCache::off(4096, Arc::new(Metrics::new()));
        cache.put_repo_entry(&meta, "refs", &repo, &big).await;
        cache.put_repo_entry(&meta, "objects", &repo, &small).await;
        assert_eq!(
            cache.repo_entry::<Names>("refs", &repo).await,
            None,
            "an entry larger than the whole budget is not kept"
        );
        assert_eq!(
            cache.repo_entry::<Names>("objects", &repo).await,
            Some(small.clone())
        );

        let off = SharedCache::off(0, Arc::new(Metrics::new()));
        off.put_repo_entry(&meta, "objects", &repo, &small).await;
        assert_eq!(
            off.repo_entry::<Names>("objects", &repo).await,
            None,
            "0: off"
        );
    }
}
