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
    /// Scratch space for spooled pushes and packs being indexed.
    pub tmp_dir: PathBuf,
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
        let tmp_dir = config.data_dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|err| {
            anyhow::anyhow!(
                "GITCLAW_DATA_DIR: cannot create {}: {err}",
                tmp_dir.display()
            )
        })?;
        let cache_dir = config.data_dir.join("cache");
        let config_object_cache = config.object_cache_bytes;
        let responses = crate::service::response_cache::ResponseCache::open(
            config.data_dir.join("pack-cache"),
            config.pack_cache_bytes,
        )
        .map_err(|err| anyhow::anyhow!("GITCLAW_DATA_DIR: cannot open the pack cache: {err}"))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                push_slots: Semaphore::new(config.max_concurrent_pushes),
                gc_locks: Default::default(),
                packs: PackCache::new(cache_dir),
                config,
                meta,
                store,
                tmp_dir,
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
        for pack in packs {
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
        };
        let db = ObjectDb::new(handles, Arc::new(source));
        Ok(if self.config.object_cache_bytes > 0 {
            db.with_cache(self.objects.clone())
        } else {
            db
        })
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
/// change, so an entry can never be stale.
pub struct PackCache {
    dir: PathBuf,
    open: Mutex<std::collections::HashMap<(String, ObjectId), Arc<PackHandle>>>,
}

impl PackCache {
    pub fn new(dir: PathBuf) -> Self {
        PackCache {
            dir,
            open: Mutex::new(Default::default()),
        }
    }

    fn lookup(&self, key: &(String, ObjectId)) -> Option<Arc<PackHandle>> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
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
        let index_path = match (store.local_path(&pack_key), store.local_path(&index_key)) {
            (Some(_), Some(index)) => index,
            _ => {
                let dir = self.dir.join(repo.as_str());
                tokio::fs::create_dir_all(&dir).await?;
                let pack_path = dir.join(format!("pack-{hash}.pack"));
                let index_path = dir.join(format!("pack-{hash}.idx"));
                if !tokio::fs::try_exists(&pack_path).await.unwrap_or(false) {
                    store.get_to_file(&pack_key, &pack_path).await?;
                }
                if !tokio::fs::try_exists(&index_path).await.unwrap_or(false) {
                    store.get_to_file(&index_key, &index_path).await?;
                }
                index_path
            }
        };
        let handle = tokio::task::spawn_blocking(move || PackHandle::open(&index_path)).await??;
        if handle.hash() != hash {
            anyhow::bail!("pack {hash} has checksum {} in the store", handle.hash());
        }
        let handle = Arc::new(handle);
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, handle.clone());
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
}

impl LooseSource for StoreLoose {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        self.ids.contains_key(id)
    }

    fn size(&self, id: &gitclaw_pack::oid) -> Result<Option<u64>, PackError> {
        Ok(self.ids.get(id).map(|(_, size)| *size))
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
