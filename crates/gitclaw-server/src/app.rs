//! The shared state of a running server: every service and cache, as fields of
//! one [`App`], and the background tasks it owns.
//!
//! Nothing a request shares with another lives anywhere else (no statics):
//! a test can run several servers in one process and each has its own caches.
//! Background work (gc after pushes, the deletion and sweep loops) is spawned
//! through [`App::spawn`] so shutdown can stop it and wait for it.

use std::{future::Future, sync::Arc};

use gitclaw_metadata::{Metadata, Repo};
use gitclaw_pack::odb::{ObjectCache, ObjectDb};
use gitclaw_storage::{FilesystemBackend, ObjectStorageBackend};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    error::GitError,
    metrics::Metrics,
    scratch::Scratch,
    service::{
        fetch::WholePackAnswers, gc::GcLocks, pack_cache::PackCache, response_cache::ResponseCache,
    },
};

/// A handle on the running server's [`App`]; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

/// Everything a request handler needs.
pub struct App {
    pub config: Config,
    pub meta: Metadata,
    pub store: Arc<dyn ObjectStorageBackend>,
    /// Opened packs, downloaded from the store when it has no local files.
    pub packs: PackCache,
    /// Generated clone packs, for repeated identical clones.
    pub responses: Arc<ResponseCache>,
    /// Full clones one stored pack answered exactly.
    pub answers: Arc<WholePackAnswers>,
    /// The shared metadata cache (Redis), or none.
    pub shared: crate::service::shared_cache::SharedCache,
    /// Inflated commits and trees, shared by all walks.
    pub objects: Arc<ObjectCache>,
    /// Everything `/metrics` exports.
    pub metrics: Arc<Metrics>,
    /// One permit per push allowed to do its work at once.
    pub push_slots: Semaphore,
    /// Turns to generate packs for fetches.
    pub generations: Arc<crate::service::fetch::limits::PackGenerations>,
    /// Repositories being compacted by this process.
    pub gc_locks: GcLocks,
    /// One permit per compaction allowed to run at once: each holds memory in
    /// proportion to its repository, so how many run is what bounds it.
    pub compaction_slots: Semaphore,
    /// This process's own scratch directory.
    pub scratch: Scratch,
    /// Wakes this instance's webhook deliverer.
    pub hooks: crate::service::hooks::Deliveries,
    /// Background tasks, waited for at shutdown.
    tasks: TaskTracker,
    /// Cancelled when the server shuts down; background loops watch it.
    pub shutdown: CancellationToken,
    /// HTTPS on the main listener, when `GITCLAW_TLS_CERT` is set.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The database has the legacy object table (looked for at start): reads
    /// of repositories not yet migrated fall back to it.
    pub legacy_table: bool,
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Why the server cannot start, naming the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("GITCLAW_DATA_DIR: {what} under {path}: {source}")]
    DataDir {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("DATABASE_URL: {0}")]
    Database(#[source] gitclaw_metadata::Error),
    #[error("S3_BUCKET: {0}")]
    Bucket(String),
    #[error("GITCLAW_DATA_DIR: {0}")]
    Store(#[source] gitclaw_storage::StorageError),
    #[error("REDIS_URL: {0}")]
    Redis(String),
    #[error("{variable}: {0}", variable = .0.variable())]
    Tls(crate::tls::TlsError),
}

impl AppState {
    /// Open the metadata database and the object store the configuration names.
    pub async fn open(config: Config) -> Result<AppState, StartError> {
        let data_dir = |what: &'static str, path: std::path::PathBuf| {
            move |source| StartError::DataDir { what, path, source }
        };
        std::fs::create_dir_all(&config.data_dir)
            .map_err(data_dir("cannot create", config.data_dir.clone()))?;
        let options = gitclaw_metadata::ConnectOptions {
            slow_statement: config.slow_statement,
            max_connections: config.db_max_connections,
            ..Default::default()
        };
        let metrics = Arc::new(Metrics::new());
        let meta = Metadata::connect_with(&config.database_url, options)
            .await
            .map_err(StartError::Database)?
            .with_observer(metrics.clone());
        let legacy_table = meta
            .has_legacy_table()
            .await
            .map_err(StartError::Database)?;
        let store = open_store(&config, &metrics).await?;
        let tmp = config.data_dir.join("tmp");
        let scratch = Scratch::open(&tmp).map_err(data_dir("cannot prepare scratch space", tmp))?;
        let cache_dir = config.data_dir.join("cache");
        let packs = PackCache::new(
            cache_dir.clone(),
            config.download_cache_bytes,
            config.open_pack_cache_bytes,
            &metrics,
        )
        .map_err(data_dir("cannot prepare the download cache", cache_dir))?
        .with_range_reads_above(config.range_reads_above_bytes)
        .with_index_range_reads_above(config.index_range_reads_above_bytes);
        let responses_dir = config.data_dir.join("pack-cache");
        let responses = ResponseCache::open_with(
            responses_dir.clone(),
            config.response_cache_bytes,
            config.response_cache_min_occurrences,
            &metrics,
        )
        .map_err(data_dir("cannot open the response cache", responses_dir))?;
        let object_cache = usize::try_from(config.object_cache_bytes).unwrap_or(usize::MAX);
        let shared = match &config.redis {
            Some(settings) => crate::service::shared_cache::SharedCache::open(
                settings.clone(),
                config.metadata_cache_bytes,
                metrics.clone(),
            )
            .map_err(StartError::Redis)?,
            None => crate::service::shared_cache::SharedCache::off(
                config.metadata_cache_bytes,
                metrics.clone(),
            ),
        };
        let tls = config
            .tls
            .as_ref()
            .map(|files| files.acceptor(metrics.tls_certificate_expiry.clone()))
            .transpose()
            .map_err(StartError::Tls)?;
        Ok(AppState(Arc::new(App {
            tls,
            push_slots: Semaphore::new(config.max_concurrent_pushes),
            generations: crate::service::fetch::limits::PackGenerations::new(
                config.pack_generations,
                metrics.clone(),
            ),
            gc_locks: Default::default(),
            compaction_slots: Semaphore::new(config.gc.max_concurrent),
            packs,
            responses,
            answers: Default::default(),
            shared,
            objects: Arc::new(ObjectCache::new(object_cache)),
            metrics,
            config,
            meta,
            store,
            scratch,
            hooks: Default::default(),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            legacy_table,
        })))
    }

    /// The pack-engine view of a repository's objects, from the metadata's lists.
    pub async fn object_db(&self, repo: &Repo) -> Result<ObjectDb, GitError> {
        crate::service::objects::object_db(self, repo).await
    }

    /// Run `work` in the background, tracked: [`AppState::stop_background`]
    /// waits for it. Work that loops should watch [`App::shutdown`].
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(work);
    }

    /// Run `work` every `period`, the first time at `start`, until shutdown
    /// (which also cuts a run short); a failure is logged as `what` and the
    /// work tried again at the next tick.
    pub fn spawn_periodic<E, Fut>(
        &self,
        start: tokio::time::Instant,
        period: std::time::Duration,
        what: &'static str,
        work: impl Fn(AppState) -> Fut + Send + Sync + 'static,
    ) where
        E: std::error::Error,
        Fut: Future<Output = Result<(), E>> + Send,
    {
        let state = self.clone();
        self.spawn(async move {
            let mut ticker = tokio::time::interval_at(start, period);
            loop {
                let result = tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    result = async {
                        ticker.tick().await;
                        work(state.clone()).await
                    } => result,
                };
                if let Err(err) = result {
                    tracing::warn!(error = %crate::error::chain(&err), "{what} failed; will retry");
                }
            }
        });
    }

    /// Cancel the background loops and wait for every tracked task to end.
    pub async fn stop_background(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The object store the configuration names: S3 when `S3_BUCKET` is set (every
/// request it sends counted in `metrics`), else the filesystem under the data
/// directory (every call counted).
pub async fn open_store(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn ObjectStorageBackend>, StartError> {
    Ok(match &config.s3 {
        Some(s3) => {
            let backend = gitclaw_storage::S3Backend::observed(s3.clone(), metrics.clone())
                .await
                .map_err(|err| StartError::Bucket(err.to_string()))?;
            backend.verify().await.map_err(|err| {
                StartError::Bucket(format!("bucket '{}': {err}", backend.bucket()))
            })?;
            Arc::new(backend)
        }
        None => Arc::new(gitclaw_storage::Observed::new(
            FilesystemBackend::new(config.data_dir.join("objects")).map_err(StartError::Store)?,
            metrics.clone(),
        )),
    })
}
