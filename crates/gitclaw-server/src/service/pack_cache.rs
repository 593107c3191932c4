//! Opened packs, shared by every request of this process.
//!
//! Packs are named by their checksum and never change, so an entry is never
//! stale. A store with local files (the filesystem backend) is read in place;
//! from S3 a pack and its index are downloaded once into the cache directory,
//! which holds at most `GITCLAW_DOWNLOAD_CACHE_BYTES`: past that the least
//! used downloads are forgotten and their files deleted (a request still
//! reading one keeps its mapping: the data outlives the file's name).
//! Concurrent first opens of one pack wait on a single download.
//!
//! Each download gets file names of its own, so deleting an evicted entry can
//! never remove the files of a newer download of the same pack; the directory
//! is emptied at start-up, as nothing in it belongs to a live entry then.

use std::{path::PathBuf, sync::Arc};

use gitclaw_pack::{odb::PackHandle, ObjectId, PackError};
use gitclaw_storage::{ObjectKey, ObjectStorageBackend, RepoId};
use moka::{future::Cache, policy::EvictionPolicy};

use crate::error::GitError;

/// The opened-pack cache; see the module doc.
pub struct PackCache {
    dir: PathBuf,
    open: Cache<(String, ObjectId), Arc<CachedPack>>,
}

struct CachedPack {
    handle: Arc<PackHandle>,
    /// The downloaded files (none: the store's own files).
    files: Vec<PathBuf>,
    /// Bytes of those files.
    bytes: u64,
}

/// Entries are weighed in KiB (moka weighs in `u32`); an entry read in place
/// weighs one, so the open handles stay bounded in number too.
fn weight(bytes: u64) -> u32 {
    u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1)
}

impl PackCache {
    /// A cache downloading into `dir` (emptied first), holding at most `max_bytes` there.
    pub fn new(dir: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let open = Cache::builder()
            // Recency decides, as for any disk cache of downloads; the default
            // frequency-based admission could refuse a new pack outright.
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity((max_bytes / 1024).max(1))
            .weigher(|_, entry: &Arc<CachedPack>| weight(entry.bytes))
            .eviction_listener(|_, entry: Arc<CachedPack>, _| {
                for file in &entry.files {
                    let _ = std::fs::remove_file(file);
                }
            })
            .build();
        Ok(PackCache { dir, open })
    }

    /// Bytes of downloaded packs held in the cache directory.
    pub async fn downloaded_bytes(&self) -> u64 {
        self.open.run_pending_tasks().await;
        self.open.iter().map(|(_, entry)| entry.bytes).sum()
    }

    /// The opened pack: the store's local file, or a download into the cache dir.
    pub async fn open(
        &self,
        store: &Arc<dyn ObjectStorageBackend>,
        repo: &RepoId,
        hash: &ObjectId,
    ) -> Result<Arc<PackHandle>, GitError> {
        let key = (repo.as_str().to_string(), *hash);
        let mut loaded = false;
        let load = async {
            loaded = true;
            self.load(store, repo, hash).await
        };
        let entry = self.open.try_get_with(key, load).await?;
        if loaded {
            // Evict now rather than on some later call, so the disk bound holds
            // as soon as the download is in.
            self.open.run_pending_tasks().await;
        }
        Ok(entry.handle.clone())
    }

    async fn load(
        &self,
        store: &Arc<dyn ObjectStorageBackend>,
        repo: &RepoId,
        hash: &ObjectId,
    ) -> Result<Arc<CachedPack>, GitError> {
        let pack_key = ObjectKey::pack(repo, hash);
        let index_key = ObjectKey::pack_index(repo, hash);
        let (index_path, files, bytes) =
            match (store.local_path(&pack_key), store.local_path(&index_key)) {
                (Some(_), Some(index)) => (index, Vec::new(), 0),
                _ => {
                    let dir = self.dir.join(repo.as_str());
                    tokio::fs::create_dir_all(&dir)
                        .await
                        .map_err(GitError::io("making room for a downloaded pack"))?;
                    let nonce = uuid::Uuid::new_v4().simple().to_string();
                    let pack_path = dir.join(format!("pack-{hash}-{nonce}.pack"));
                    let index_path = dir.join(format!("pack-{hash}-{nonce}.idx"));
                    let mut bytes = 0;
                    for (key, path) in [(&pack_key, &pack_path), (&index_key, &index_path)] {
                        bytes += store.get_to_file(key, path).await?;
                    }
                    (index_path.clone(), vec![pack_path, index_path], bytes)
                }
            };
        let handle = tokio::task::spawn_blocking(move || PackHandle::open(&index_path)).await?;
        let handle = match handle {
            Ok(handle) if handle.hash() == hash => handle,
            result => {
                for file in &files {
                    let _ = tokio::fs::remove_file(file).await;
                }
                return Err(match result {
                    Ok(handle) => PackError::Corrupt(format!(
                        "pack {hash} has checksum {} in the store",
                        handle.hash()
                    )),
                    Err(err) => err,
                }
                .into());
            }
        };
        Ok(Arc::new(CachedPack {
            handle: Arc::new(handle),
            files,
            bytes,
        }))
    }
}
