//! The shared state of a running server and access to one repository's objects.
//!
//! `AppState` holds the services (metadata, object store, pack cache). `RepoObjects`
//! turns the metadata's pack list and loose-object index into a pack-engine
//! [`ObjectDb`] without listing the store: the hot path never does a LIST or HEAD.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use gitclaw_metadata::{Metadata, Repo};
use gitclaw_pack::odb::{LooseSource, ObjectDb, PackHandle};
use gitclaw_pack::{Kind, ObjectId, PackError};
use gitclaw_storage::{FilesystemBackend, ObjectKey, ObjectStorageBackend, RepoId};
use gix_hashtable::HashMap;
use tokio::sync::Semaphore;

use crate::config::Config;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    pub meta: Metadata,
    pub store: Arc<dyn ObjectStorageBackend>,
    pub packs: PackCache,
    pub push_slots: Semaphore,
    pub gc_locks: crate::service::gc::GcLocks,
    /// Scratch space for spooled pushes and packs being indexed: this process's own.
    pub tmp_dir: PathBuf,
    _scratch: Scratch,
    /// Generated clone packs, for repeated identical clones.
    pub responses: Arc<crate::service::response_cache::ResponseCache>,
    /// Inflated commits and trees, shared by all walks.
    pub objects: Arc<gitclaw_pack::odb::ObjectCache>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Open the metadata database and the object store the configuration names.
    pub async fn open(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir).map_err(|err| {
            anyhow::anyhow!(
                "GITCLAW_DATA_DIR: cannot create {}: {err}",
                config.data_dir.display()
            )
        })?;
        let meta = Metadata::connect(&config.database_url)
            .await
            .map_err(|err| anyhow::anyhow!("DATABASE_URL: {err}"))?;
        let store = open_store(&config).await?;
        let scratch = Scratch::open(&config.data_dir.join("tmp")).map_err(|err| {
            anyhow::anyhow!(
                "GITCLAW_DATA_DIR: cannot prepare scratch space under {}: {err}",
                config.data_dir.join("tmp").display()
            )
        })?;
        let tmp_dir = scratch.dir.clone();
        let cache_dir = config.data_dir.join("cache");
        let config_object_cache = config.object_cache_bytes;
        let config_store_cache = config.download_cache_bytes;
        let responses = crate::service::response_cache::ResponseCache::open(
            config.data_dir.join("pack-cache"),
            config.response_cache_bytes,
        )
        .map_err(|err| anyhow::anyhow!("GITCLAW_DATA_DIR: cannot open the pack cache: {err}"))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                push_slots: Semaphore::new(config.max_concurrent_pushes),
                gc_locks: Default::default(),
                packs: PackCache::new(cache_dir, config_store_cache),
                config,
                meta,
                store,
                tmp_dir,
                _scratch: scratch,
                responses,
                objects: Arc::new(gitclaw_pack::odb::ObjectCache::new(
                    usize::try_from(config_object_cache).unwrap_or(usize::MAX),
                )),
            }),
        })
    }

    /// The pack-engine view of a repository's objects, from the metadata's lists.
    pub async fn object_db(&self, repo: &Repo) -> anyhow::Result<ObjectDb> {
        let repo_id = RepoId::new(&repo.id)?;
        let packs = self.meta.list_packs(&repo.id).await?;
        let mut handles = Vec::with_capacity(packs.len());
        for pack in &packs {
            handles.push(
                self.packs
                    .open(&*self.store, &repo_id, &pack.pack_hash)
                    .await?,
            );
        }
        let loose = self.meta.list_loose(&repo.id).await?;
        let mut ids: HashMap<ObjectId, (Kind, u64)> = HashMap::default();
        for record in loose {
            let kind = Kind::from_bytes(record.kind.as_bytes()).map_err(|_| {
                anyhow::anyhow!(
                    "loose object {} has unknown type {}",
                    record.oid,
                    record.kind
                )
            })?;
            ids.insert(record.oid, (kind, record.size));
        }
        let source = StoreLoose {
            repo: repo_id,
            store: self.store.clone(),
            ids,
            runtime: tokio::runtime::Handle::current(),
            scratch: self.tmp_dir.clone(),
        };
        let mut db = ObjectDb::new(handles, Arc::new(source));
        for (index, pack) in packs.iter().enumerate() {
            if let Some(key) = pack.closure_of {
                db = db.with_closure(index, key);
            }
        }
        Ok(if self.config.object_cache_bytes > 0 {
            db.with_cache(self.objects.clone())
        } else {
            db
        })
    }
}

/// This process's scratch directory, `<root>/<id>/`, beside a lock file
/// `<root>/<id>.lock` held for as long as the process lives. Opening one first
/// removes the scratch directories whose lock nobody holds: their process died
/// (killed mid-push, say) and left its spooled packs behind. Entries without a
/// lock file come from older versions and are removed too.
pub struct Scratch {
    pub dir: PathBuf,
    lock: std::fs::File,
}

impl Scratch {
    pub fn open(root: &std::path::Path) -> std::io::Result<Scratch> {
        std::fs::create_dir_all(root)?;
        Scratch::remove_abandoned(root)?;
        loop {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let lock = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(root.join(format!("{id}.lock")))?;
            if lock.try_lock().is_err() {
                // Another process's clean-up got to it first: take another name.
                continue;
            }
            let dir = root.join(&id);
            std::fs::create_dir(&dir)?;
            return Ok(Scratch { dir, lock });
        }
    }

    fn remove_abandoned(root: &std::path::Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root)? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".lock"))
                .map(str::to_string)
            else {
                continue;
            };
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                let dir = root.join(&id);
                if dir.exists() {
                    tracing::info!(dir = %dir.display(), "removing the scratch space of a process that ended");
                    std::fs::remove_dir_all(&dir)?;
                }
                std::fs::remove_file(&path)?;
            }
        }
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || root.join(format!("{name}.lock")).exists() {
                continue;
            }
            tracing::info!(entry = %entry.path().display(), "removing scratch space left behind");
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut lock_path = self.dir.clone().into_os_string();
        lock_path.push(".lock");
        let _ = std::fs::remove_file(lock_path);
        let _ = self.lock.unlock();
    }
}

/// The object store the configuration names: S3 when `S3_BUCKET` is set, else the
/// filesystem under the data directory.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn ObjectStorageBackend>> {
    Ok(match &config.s3 {
        Some(s3) => {
            let backend = gitclaw_storage::S3Backend::new(s3.clone())
                .await
                .map_err(|err| anyhow::anyhow!("S3_BUCKET: {err}"))?;
            backend.verify().await.map_err(|err| {
                anyhow::anyhow!("S3_BUCKET: bucket '{}': {err}", backend.bucket())
            })?;
            Arc::new(backend)
        }
        None => Arc::new(
            FilesystemBackend::new(config.data_dir.join("objects"))
                .map_err(|err| anyhow::anyhow!("GITCLAW_DATA_DIR: {err}"))?,
        ),
    })
}

/// Opened packs, shared by all requests. Packs are named by their checksum and never
/// change, so an entry can never be stale. Packs that had to be downloaded (the S3
/// backend) live in the cache directory, which is bounded: past `max_bytes` the
/// least recently used downloads are forgotten and their files deleted (requests
/// still holding one keep reading it: the mapping outlives the file's name).
pub struct PackCache {
    dir: PathBuf,
    max_bytes: u64,
    open: Mutex<std::collections::HashMap<(String, ObjectId), CachedPack>>,
}

struct CachedPack {
    handle: Arc<PackHandle>,
    /// Bytes this entry keeps in the cache directory (0: the store's own file).
    downloaded: u64,
    last_used: u64,
}

static PACK_CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn tick() -> u64 {
    PACK_CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl PackCache {
    /// A cache over `dir` (files an earlier run left there are used again when
    /// their pack is opened).
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        PackCache {
            dir,
            max_bytes,
            open: Mutex::new(Default::default()),
        }
    }

    fn lookup(&self, key: &(String, ObjectId)) -> Option<Arc<PackHandle>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let entry = open.get_mut(key)?;
        entry.last_used = tick();
        Some(entry.handle.clone())
    }

    /// Bytes of downloaded packs held in the cache directory.
    pub fn downloaded_bytes(&self) -> u64 {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.values().map(|e| e.downloaded).sum()
    }

    /// The opened pack, reading it from the store's local file or downloading it into the cache dir.
    pub async fn open(
        &self,
        store: &dyn ObjectStorageBackend,
        repo: &RepoId,
        hash: &ObjectId,
    ) -> anyhow::Result<Arc<PackHandle>> {
        let key = (repo.as_str().to_string(), *hash);
        if let Some(handle) = self.lookup(&key) {
            return Ok(handle);
        }
        let pack_key = ObjectKey::pack(repo, hash);
        let index_key = ObjectKey::pack_index(repo, hash);
        let (index_path, downloaded) =
            match (store.local_path(&pack_key), store.local_path(&index_key)) {
                (Some(_), Some(index)) => (index, 0),
                _ => {
                    let dir = self.dir.join(repo.as_str());
                    tokio::fs::create_dir_all(&dir).await?;
                    let pack_path = dir.join(format!("pack-{hash}.pack"));
                    let index_path = dir.join(format!("pack-{hash}.idx"));
                    let mut bytes = 0;
                    for (key, path) in [(&pack_key, &pack_path), (&index_key, &index_path)] {
                        bytes += match tokio::fs::metadata(path).await {
                            Ok(meta) => meta.len(),
                            Err(_) => store.get_to_file(key, path).await?,
                        };
                    }
                    (index_path, bytes)
                }
            };
        let handle = tokio::task::spawn_blocking(move || PackHandle::open(&index_path)).await??;
        if handle.hash() != hash {
            anyhow::bail!("pack {hash} has checksum {} in the store", handle.hash());
        }
        let handle = Arc::new(handle);
        let evicted = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.insert(
                key.clone(),
                CachedPack {
                    handle: handle.clone(),
                    downloaded,
                    last_used: tick(),
                },
            );
            let mut evicted = Vec::new();
            let mut total: u64 = open.values().map(|e| e.downloaded).sum();
            while total > self.max_bytes {
                let victim = open
                    .iter()
                    .filter(|(k, e)| e.downloaded > 0 && **k != key)
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone());
                let Some(victim) = victim else { break };
                if let Some(entry) = open.remove(&victim) {
                    total -= entry.downloaded;
                    evicted.push(victim);
                }
            }
            evicted
        };
        for (repo, hash) in evicted {
            let dir = self.dir.join(&repo);
            let _ = tokio::fs::remove_file(dir.join(format!("pack-{hash}.pack"))).await;
            let _ = tokio::fs::remove_file(dir.join(format!("pack-{hash}.idx"))).await;
        }
        Ok(handle)
    }
}

/// Loose objects of one repository: the metadata's index for existence, the store for bytes.
struct StoreLoose {
    repo: RepoId,
    store: Arc<dyn ObjectStorageBackend>,
    /// Loose object ids with their types and inflated sizes.
    ids: HashMap<ObjectId, (Kind, u64)>,
    runtime: tokio::runtime::Handle,
    /// Where big loose objects of a store without local files are downloaded to be streamed.
    scratch: PathBuf,
}

impl LooseSource for StoreLoose {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        self.ids.contains_key(id)
    }

    fn size(&self, id: &gitclaw_pack::oid) -> Result<Option<u64>, PackError> {
        Ok(self.ids.get(id).map(|(_, size)| *size))
    }

    fn header(&self, id: &gitclaw_pack::oid) -> Result<Option<(Kind, u64)>, PackError> {
        Ok(self.ids.get(id).copied())
    }

    /// The loose bytes are read from the store's own file, or downloaded into the
    /// scratch directory (unlinked at once: the open file keeps them until the
    /// stream is dropped), and inflated as the stream is read.
    fn open(
        &self,
        id: &gitclaw_pack::oid,
    ) -> Result<Option<gitclaw_pack::odb::ObjectStream>, PackError> {
        if !self.ids.contains_key(id) {
            return Ok(None);
        }
        let key = ObjectKey::loose(&self.repo, id);
        let io = |context: &str| {
            let context = format!("{context} loose object {id}");
            move |err: std::io::Error| PackError::Store(format!("{context}: {err}"))
        };
        let file = match self.store.local_path(&key) {
            Some(path) => std::fs::File::open(path).map_err(io("opening"))?,
            None => {
                let download = tempfile::Builder::new()
                    .prefix("loose-")
                    .tempfile_in(&self.scratch)
                    .map_err(io("making room for"))?;
                self.runtime
                    .block_on(self.store.get_to_file(&key, download.path()))
                    .map_err(|err| PackError::Store(err.to_string()))?;
                // get_to_file replaced the temp file by rename: open what is there now.
                let file = std::fs::File::open(download.path()).map_err(io("opening"))?;
                drop(download);
                file
            }
        };
        let reader = gitclaw_storage::LooseObjectReader::new(
            key.as_str(),
            id,
            std::io::BufReader::with_capacity(256 * 1024, file),
            gitclaw_storage::MAX_LOOSE_OBJECT_BYTES,
        )
        .map_err(|err| PackError::Store(err.to_string()))?;
        let (kind, size) = (reader.kind(), reader.size());
        Ok(Some(gitclaw_pack::odb::ObjectStream {
            kind,
            size,
            content: Box::new(StreamErrors(reader)),
        }))
    }

    fn list(&self) -> Vec<(ObjectId, Kind)> {
        self.ids
            .iter()
            .map(|(id, (kind, _))| (*id, *kind))
            .collect()
    }

    fn read(&self, id: &gitclaw_pack::oid) -> Result<Option<(Kind, Vec<u8>)>, PackError> {
        if !self.ids.contains_key(id) {
            return Ok(None);
        }
        // Called from blocking pack-engine threads, never from the async runtime.
        self.runtime
            .block_on(gitclaw_storage::get_loose_object(
                &*self.store,
                &self.repo,
                id,
            ))
            .map(Some)
            .map_err(|err| PackError::Store(err.to_string()))
    }
}

/// Turns a loose reader's errors into ones that name the object as corrupted.
struct StreamErrors<R: std::io::Read>(gitclaw_storage::LooseObjectReader<R>);

impl<R: std::io::Read> std::io::Read for StreamErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|err| std::io::Error::other(self.0.error(err).to_string()))
    }
}
