//! Opening the database: URL handling, pool settings, per-connection SQLite
//! pragmas, the embedded migrations, and how write transactions begin.
//!
//! For: everything that differs between SQLite and PostgreSQL outside the
//! schema files. Not for: queries (they are shared and live in the other
//! modules).

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use std::str::FromStr;

use sqlx::any::{Any, AnyConnectOptions, AnyPoolOptions};

/// Connections a PostgreSQL pool keeps open however idle (at most its maximum).
pub const WARM_CONNECTIONS: u32 = 4;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr, Transaction};

use crate::{Error, Metadata, Result};

/// The database behind a [`Metadata`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite file (or in-memory database).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Which backend a URL selects: `sqlite:` or `postgres://` /
    /// `postgresql://`.
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(Error::InvalidInput(format!(
                "unsupported database URL scheme {scheme:?}: expected sqlite://PATH, \
                 sqlite::memory: or postgres://…"
            )))
        }
    }
}

/// Tuning for [`Metadata::connect_with`]. The defaults suit a server.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Pool size. `None`: 8 for an SQLite file, 16 for PostgreSQL.
    /// An in-memory SQLite database always uses exactly one connection,
    /// because each connection would otherwise see its own empty database.
    pub max_connections: Option<u32>,
    /// How long an operation waits for a pooled connection before failing
    /// with a (transient) [`Error::Database`].
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for another writer's lock before
    /// failing with `SQLITE_BUSY`. Concurrent pushes queue up within it.
    pub sqlite_busy_timeout: Duration,
    /// A statement slower than this is logged as a warning (with its SQL and
    /// duration, target `sqlx::query`); every statement at DEBUG.
    pub slow_statement: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: None,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(10),
            slow_statement: Duration::from_secs(1),
        }
    }
}

/// Migrations embedded in the binary, per backend: `(version, description,
/// SQL)`. To change the schema, add `migrations/<backend>/NNNN_name.sql` for
/// BOTH backends and list them here (a test checks the lists against the
/// directories). Applied migrations must never be edited: sqlx verifies their
/// checksums at connect.
/// How long an operation waits for PostgreSQL to take a new connection when
/// the pool has none open (see [`Metadata::reachable`]).
const CONNECT_WAIT: Duration = Duration::from_secs(5);

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "compaction",
        include_str!("../migrations/sqlite/0002_compaction.sql"),
    ),
    (
        3,
        "tokens",
        include_str!("../migrations/sqlite/0003_tokens.sql"),
    ),
    (
        4,
        "peeled_refs",
        include_str!("../migrations/sqlite/0004_peeled_refs.sql"),
    ),
    (
        5,
        "pack_closures",
        include_str!("../migrations/sqlite/0005_pack_closures.sql"),
    ),
    (
        6,
        "pack_closure_tips",
        include_str!("../migrations/sqlite/0006_pack_closure_tips.sql"),
    ),
    (
        7,
        "auth",
        include_str!("../migrations/sqlite/0007_auth.sql"),
    ),
    (
        8,
        "store_claims",
        include_str!("../migrations/sqlite/0008_store_claims.sql"),
    ),
    (
        9,
        "migration",
        include_str!("../migrations/sqlite/0009_migration.sql"),
    ),
    (
        10,
        "cache_version",
        include_str!("../migrations/sqlite/0010_cache_version.sql"),
    ),
    (11, "lfs", include_str!("../migrations/sqlite/0011_lfs.sql")),
    (
        12,
        "pack_graphs",
        include_str!("../migrations/sqlite/0012_pack_graphs.sql"),
    ),
    (
        13,
        "pack_closure_refs",
        include_str!("../migrations/sqlite/0013_pack_closure_refs.sql"),
    ),
    (
        14,
        "repo_redirects",
        include_str!("../migrations/sqlite/0014_repo_redirects.sql"),
    ),
    (
        15,
        "webhooks",
        include_str!("../migrations/sqlite/0015_webhooks.sql"),
    ),
    (
        16,
        "protected_refs",
        include_str!("../migrations/sqlite/0016_protected_refs.sql"),
    ),
    (
        17,
        "repo_size_limit",
        include_str!("../migrations/sqlite/0017_repo_size_limit.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "compaction",
        include_str!("../migrations/postgres/0002_compaction.sql"),
    ),
    (
        3,
        "tokens",
        include_str!("../migrations/postgres/0003_tokens.sql"),
    ),
    (
        4,
        "peeled_refs",
        include_str!("../migrations/postgres/0004_peeled_refs.sql"),
    ),
    (
        5,
        "pack_closures",
        include_str!("../migrations/postgres/0005_pack_closures.sql"),
    ),
    (
        6,
        "pack_closure_tips",
        include_str!("../migrations/postgres/0006_pack_closure_tips.sql"),
    ),
    (
        7,
        "auth",
        include_str!("../migrations/postgres/0007_auth.sql"),
    ),
    (
        8,
        "store_claims",
        include_str!("../migrations/postgres/0008_store_claims.sql"),
    ),
    (
        9,
        "migration",
        include_str!("../migrations/postgres/0009_migration.sql"),
    ),
    (
        10,
        "cache_version",
        include_str!("../migrations/postgres/0010_cache_version.sql"),
    ),
    (
        11,
        "lfs",
        include_str!("../migrations/postgres/0011_lfs.sql"),
    ),
    (
        12,
        "pack_graphs",
        include_str!("../migrations/postgres/0012_pack_graphs.sql"),
    ),
    (
        13,
        "pack_closure_refs",
        include_str!("../migrations/postgres/0013_pack_closure_refs.sql"),
    ),
    (
        14,
        "repo_redirects",
        include_str!("../migrations/postgres/0014_repo_redirects.sql"),
    ),
    (
        15,
        "webhooks",
        include_str!("../migrations/postgres/0015_webhooks.sql"),
    ),
    (
        16,
        "protected_refs",
        include_str!("../migrations/postgres/0016_protected_refs.sql"),
    ),
    (
        17,
        "repo_size_limit",
        include_str!("../migrations/postgres/0017_repo_size_limit.sql"),
    ),
];

pub(crate) fn migrations(backend: Backend) -> &'static [(i64, &'static str, &'static str)] {
    match backend {
        Backend::Sqlite => SQLITE_MIGRATIONS,
        Backend::Postgres => POSTGRES_MIGRATIONS,
    }
}

fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        migrations(backend)
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// A parsed `sqlite:` URL, normalised for sqlx.
struct SqliteTarget {
    url: String,
    memory: bool,
}

fn sqlite_target(url: &str) -> Result<SqliteTarget> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (database, params) = match rest.split_once('?') {
        Some((d, p)) => (d, Some(p)),
        None => (rest, None),
    };
    let mode = params.and_then(|p| {
        p.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "mode")
            .map(|(_, v)| v)
    });
    // An empty name opens a private temporary database: treat it like memory.
    let memory = database == ":memory:" || database.is_empty() || mode == Some("memory");
    if memory {
        return Ok(SqliteTarget {
            url: url.to_owned(),
            memory: true,
        });
    }
    if !database.contains('%') {
        // Best effort: a fresh data directory should just work. sqlx reports
        // the real problem if the directory still cannot be used.
        if let Some(parent) = Path::new(database).parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::InvalidInput(format!(
                        "cannot create directory {} for the SQLite database: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
    }
    let url = match (mode, params) {
        (Some(_), _) => url.to_owned(),
        (None, Some(p)) if !p.is_empty() => format!("{url}&mode=rwc"),
        (None, Some(_)) => format!("{url}mode=rwc"),
        (None, None) => format!("{url}?mode=rwc"),
    };
    Ok(SqliteTarget { url, memory: false })
}

impl Metadata {
    /// Opens the database at `url` and applies any pending migrations.
    ///
    /// `url` is `sqlite://PATH` (the file and its directory are created if
    /// missing), `sqlite::memory:` (one private database per `Metadata`,
    /// gone when it closes), or `postgres://user:pass@host/db` (the database
    /// must exist). SQLite files are switched to WAL, with foreign keys on
    /// and a busy timeout so concurrent writers wait for each other.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// [`Metadata::connect`] with explicit pool and timeout settings.
    ///
    /// A PostgreSQL pool keeps at least [`WARM_CONNECTIONS`] open.
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(options.acquire_timeout);
        let logged = |url: &str| -> Result<AnyConnectOptions> {
            use sqlx::ConnectOptions as _;
            Ok(AnyConnectOptions::from_str(url)?
                .log_statements(log::LevelFilter::Debug)
                .log_slow_statements(log::LevelFilter::Warn, options.slow_statement))
        };

        let pool = match backend {
            Backend::Postgres => {
                let max = options.max_connections.unwrap_or(16);
                pool_options
                    .max_connections(max)
                    // Kept open (and opened in the background at start): a
                    // fresh instance's first requests, and the reads one request
                    // makes side by side, need not each wait for a connection
                    // to be set up.
                    .min_connections(WARM_CONNECTIONS.min(max))
                    .connect_with(logged(url)?)
                    .await?
            }
            Backend::Sqlite => {
                let target = sqlite_target(url)?;
                let busy_ms = options
                    .sqlite_busy_timeout
                    .as_millis()
                    .min(i32::MAX as u128);
                // `Any` hands sqlx-sqlite only the URL, which cannot carry
                // pragmas, so they are set on every new connection here.
                let pragmas = format!("PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON;");
                let pool_options = pool_options.after_connect(move |conn, _meta| {
                    let pragmas = pragmas.clone();
                    Box::pin(async move {
                        sqlx::raw_sql(AssertSqlSafe(pragmas)).execute(conn).await?;
                        Ok(())
                    })
                });
                let pool_options = if target.memory {
                    // Every new connection to `:memory:` is a new, empty
                    // database: keep exactly one, forever.
                    pool_options
                        .max_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    pool_options.max_connections(options.max_connections.unwrap_or(8))
                };
                let pool = pool_options.connect_with(logged(&target.url)?).await?;
                if !target.memory {
                    enable_wal(&pool).await?;
                }
                pool
            }
        };

        migrator(backend).run(&pool).await?;
        tracing::debug!(backend = backend.name(), "metadata database ready");
        Ok(Metadata {
            pool,
            backend,
            observer: Default::default(),
            legacy_table: Default::default(),
        })
    }

    /// Starts a transaction that will write.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front (waiting up to
    /// the busy timeout). A plain `BEGIN` would start as a reader and fail
    /// with `SQLITE_BUSY` — without waiting — when it later tries to write
    /// while another writer holds the lock.
    /// PostgreSQL: a plain READ COMMITTED transaction; correctness comes from
    /// row locks and compare-and-swap statements.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Starts a transaction whose reads all see one moment of the database.
    ///
    /// SQLite (WAL): a deferred transaction reads one snapshot from its first
    /// read to its end. PostgreSQL: REPEATABLE READ, read only.
    pub(crate) async fn begin_snapshot(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }

    /// Whether [`Metadata::reachable`] has anything to check: PostgreSQL with
    /// no connection open.
    pub(crate) fn may_be_unreachable(&self) -> bool {
        self.backend == Backend::Postgres && self.pool.size() == 0
    }

    /// Fails fast when PostgreSQL cannot be reached: with no connection
    /// open, an operation must open one, and the pool would keep trying a
    /// database that refuses connections for its whole acquire timeout, with
    /// every request waiting as long. So with none open, an operation waits
    /// at most [`CONNECT_WAIT`] for one; a reachable database connects well
    /// within it. (A pool that has connections waits for a free one as
    /// configured: that is load, not an outage.)
    pub(crate) async fn reachable(&self) -> Result<()> {
        match tokio::time::timeout(CONNECT_WAIT, self.pool.acquire()).await {
            Ok(connection) => connection.map(drop).map_err(Into::into),
            Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
        }
    }

    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }
}

/// Switches an SQLite file to WAL (readers never block the writer) unless it
/// already is; WAL is a property of the file, so once is enough.
async fn enable_wal(pool: &sqlx::AnyPool) -> Result<()> {
    use sqlx::Row;
    let row = sqlx::query("PRAGMA journal_mode").fetch_one(pool).await?;
    let mode: String = row.try_get(0)?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let row = sqlx::query("PRAGMA journal_mode = WAL")
        .fetch_one(pool)
        .await?;
    let mode: String = row.try_get(0)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "SQLite refused WAL journal mode");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("sqlite::memory:").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            Backend::from_url("mysql://h/db"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn sqlite_urls_get_create_mode() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::InvalidInput(e.to_string()))?;
        let path = dir.path().join("sub/dir/db.sqlite");
        let url = format!("sqlite://{}", path.display());
        let t = sqlite_target(&url)?;
        assert_eq!(t.url, format!("{url}?mode=rwc"));
        assert!(!t.memory);
        assert!(path.parent().is_some_and(|p| p.is_dir()));

        let t = sqlite_target(&format!("{url}?cache=private"))?;
        assert_eq!(t.url, format!("{url}?cache=private&mode=rwc"));
        let t = sqlite_target(&format!("{url}?mode=ro"))?;
        assert_eq!(t.url, format!("{url}?mode=ro"));

        assert!(sqlite_target("sqlite::memory:")?.memory);
        assert!(sqlite_target("sqlite://:memory:")?.memory);
        assert!(sqlite_target("sqlite://?mode=memory")?.memory);
        Ok(())
    }

    /// Every migration file is embedded, in order, for both backends, and
    /// both backends have the same versions.
    #[test]
    fn embedded_migrations_match_directories() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend.name());
            let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
                .expect("migrations directory")
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let stem = name.strip_suffix(".sql")?.to_owned();
                    let (version, desc) = stem.split_once('_')?;
                    let sql = std::fs::read_to_string(e.path()).ok()?;
                    Some((version.parse().ok()?, desc.to_owned(), sql))
                })
                .collect();
            files.sort();
            let embedded: Vec<(i64, String, String)> = migrations(backend)
                .iter()
                .map(|&(v, d, s)| (v, d.to_owned(), s.to_owned()))
                .collect();
            assert_eq!(files, embedded, "{} migrations", backend.name());
        }
        let versions = |b| migrations(b).iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(versions(Backend::Sqlite), versions(Backend::Postgres));
    }

    async fn temp_db(options: ConnectOptions) -> (Metadata, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let md = Metadata::connect_with(&url, options)
            .await
            .expect("connect");
        (md, dir)
    }

    async fn pragma(md: &Metadata, sql: &'static str) -> String {
        use sqlx::Row;
        let row = sqlx::query(sql).fetch_one(md.pool()).await.expect(sql);
        row.try_get::<i64, _>(0)
            .map(|v| v.to_string())
            .or_else(|_| row.try_get::<String, _>(0))
            .expect("pragma value")
    }

    #[tokio::test]
    async fn sqlite_connection_settings() {
        let (md, _dir) = temp_db(ConnectOptions::default()).await;
        // Check several pooled connections, not just the first.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = md.pool().acquire().await.expect("acquire");
            use sqlx::Row;
            let busy: i64 = sqlx::query("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await
                .and_then(|r| r.try_get(0))
                .expect("busy_timeout");
            assert_eq!(busy, 10_000);
            let fk: i64 = sqlx::query("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .and_then(|r| r.try_get(0))
                .expect("foreign_keys");
            assert_eq!(fk, 1);
            held.push(conn);
        }
        drop(held);
        assert_eq!(pragma(&md, "PRAGMA journal_mode").await, "wal");
    }

    /// A writer waits for another writer's lock instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_writers_wait_for_each_other() {
        let (md, _dir) = temp_db(ConnectOptions::default()).await;
        let repo = md.create_repo("o", "n", false, "t").await.expect("create");
        let blocker = md.begin_write().await.expect("first writer");
        let push = crate::PushCommit {
            repo_id: repo.id.clone(),
            updates: vec![crate::RefUpdate {
                name: "refs/heads/main".into(),
                old: None,
                new: Some(gix_hash::ObjectId::null(gix_hash::Kind::Sha1)),
            }],
            atomic: false,
            pack: None,
            loose: Vec::new(),
            actor: "t".into(),
            details: serde_json::Value::Null,
            pack_closure: None,
            push_options: Vec::new(),
            ref_details: Default::default(),
        };
        let waiting = tokio::spawn({
            let md = md.clone();
            async move { md.commit_push(push).await }
        });
        // Not a wait on anything: the lock stays held this long, and the second
        // writer must not get through meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "second writer must wait");
        blocker.rollback().await.expect("release");
        let results = waiting.await.expect("join").expect("push after the wait");
        assert_eq!(results, vec![crate::RefResult::Applied]);
    }

    /// Past the busy timeout the error says it is worth retrying.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_busy_past_timeout_is_transient() {
        let (md, _dir) = temp_db(ConnectOptions {
            sqlite_busy_timeout: Duration::from_millis(50),
            ..ConnectOptions::default()
        })
        .await;
        let blocker = md.begin_write().await.expect("first writer");
        let err = md
            .create_repo("o", "n", false, "t")
            .await
            .expect_err("lock is held");
        assert!(err.is_transient(), "{err:?}");
        assert!(!Error::NotFound("x".into()).is_transient());
        blocker.rollback().await.expect("release");
        md.create_repo("o", "n", false, "t")
            .await
            .expect("after release");
    }
}
