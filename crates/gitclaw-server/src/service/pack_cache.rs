//! Opened packs, shared by every request of this process.
//!
//! Packs are named by their checksum and never change, so an entry is never
//! stale. A store with local files (the filesystem backend) is read in place;
//! from S3 a pack and its index are downloaded once into the cache directory,
//! which holds at most `GITCLAW_DOWNLOAD_CACHE_BYTES`: past that the least
//! used downloads are forgotten and their files deleted (a request still
//! reading one keeps its mapping: the data outlives the file's name).
//! Concurrent first opens of one pack wait on a single download. Open packs
//! also hold tables in memory as requests build them (12¼ bytes an object):
//! those read in place are bounded by `GITCLAW_OPEN_PACK_CACHE_BYTES` the same
//! way, least recently used closed first (each entry is weighed against both
//! bounds, see [`weight`]); a download's through its bytes, which are far more.
//!
//! A pack larger than `GITCLAW_RANGE_READS_ABOVE_BYTES` is not downloaded
//! whole: the pack becomes a local file of its full length whose 1 MiB blocks
//! are read by ranged GETs the first time a request needs them
//! ([`PackHandle::open_sparse`]); its index too when larger than
//! `GITCLAW_INDEX_RANGE_READS_ABOVE_BYTES`, but for the tables after its object ids, read when it is opened
//! ([`RangedIndexFile`]), and the rest of it comes down behind the request
//! that opened it. A shallow clone of a multi-GB pack on a fresh instance so
//! reads the blocks holding what it sends, and a fetch of a few commits the
//! ids it looks up. Such an entry weighs the full lengths, what its files may
//! grow to.
//!
//! Each download gets file names of its own, so deleting an evicted entry can
//! never remove the files of a newer download of the same pack; the directory
//! is emptied at start-up, as nothing in it belongs to a live entry then.

use std::{ops::Range, path::PathBuf, sync::Arc};

use futures_util::{StreamExt, TryStreamExt};
use gitclaw_metadata::PackRecord;
use gitclaw_pack::{
    commit_graph::CommitGraph,
    odb::{EarlyOrder, PackHandle, RangeSource, RangedIndexFile, RangedPackFile},
    ObjectId, PackError,
};
use gitclaw_storage::{ObjectKey, ObjectStorageBackend, RepoId};
use moka::{future::Cache, policy::EvictionPolicy};

use crate::{error::GitError, metrics::Metrics};

/// The `cache` label of this cache's metrics.
const CACHE_NAME: &str = "downloaded_packs";
/// The memory gauges' name for the opened packs' tables.
const OPEN_PACKS_NAME: &str = "open_packs";

/// The opened-pack cache; see the module doc.
pub struct PackCache {
    dir: PathBuf,
    bounds: Bounds,
    /// Packs larger than this are read by ranges (see the module doc).
    range_reads_above: u64,
    /// Indexes of those packs larger than this are read by ranges too.
    index_range_reads_above: u64,
    metrics: Arc<Metrics>,
    /// By repository, pack and whether the pack has a commit-graph (recorded
    /// after the pack itself when compaction finds a stored pack complete: the
    /// handle opened before then has none).
    open: Cache<(String, ObjectId, bool), Arc<CachedPack>>,
    /// Repositories whose packs were lately opened ahead of a fetch (see
    /// [`objects::warm_up`](super::objects::warm_up)).
    warmed: moka::sync::Cache<String, ()>,
    /// Indexes read by ranges coming down whole behind their first request.
    index_fills: tokio_util::task::TaskTracker,
}

/// Repositories remembered as warmed up, and for how long: after that a
/// repository's next `info/refs` opens its packs ahead again (at no more cost
/// than reading its pack list when they are still open).
const WARMED_REPOS: u64 = 10_000;
const WARMED_FOR: std::time::Duration = std::time::Duration::from_secs(600);

struct CachedPack {
    handle: Arc<PackHandle>,
    /// The downloaded files (none: the store's own files).
    files: Vec<PathBuf>,
    /// Bytes of those files.
    bytes: u64,
    /// Bytes of memory the handle may come to hold, weighed against the memory
    /// bound (packs read in place only; see `load`).
    memory: u64,
}

/// What the cache may hold: disk space for downloaded files, and memory for
/// the opened packs' tables (their pack order, entry types, tip entries).
#[derive(Clone, Copy, Debug)]
struct Bounds {
    disk: u64,
    memory: u64,
}

/// The cache's capacity in weight units: an entry weighs the larger of its
/// shares of the two bounds, counted in `CAPACITY`ths of a bound, so entries
/// whose weights add up to at most this fit each bound. An entry over either
/// bound by itself weighs more than the whole capacity and is not kept; every
/// entry weighs at least one unit.
const CAPACITY: u64 = 1 << 31;

fn weight(disk: u64, memory: u64, bounds: Bounds) -> u32 {
    let share = |bytes: u64, bound: u64| {
        (u128::from(bytes) * u128::from(CAPACITY)).div_ceil(u128::from(bound.max(1)))
    };
    let units = share(disk, bounds.disk)
        .max(share(memory, bounds.memory))
        .max(1);
    u32::try_from(units).unwrap_or(u32::MAX)
}

impl PackCache {
    /// A cache downloading into `dir` (emptied first), holding at most `max_bytes`
    /// there, and opened packs whose tables take at most `max_memory` bytes
    /// (see [`PackHandle::heap_bytes_at_most`]). A pack over either bound by
    /// itself is used and let go (its download deleted) at once.
    pub fn new(
        dir: PathBuf,
        max_bytes: u64,
        max_memory: u64,
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let bounds = Bounds {
            disk: max_bytes,
            memory: max_memory,
        };
        let open = Cache::builder()
            // Recency decides, as for any disk cache of downloads; the default
            // frequency-based admission could refuse a new pack outright.
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity(CAPACITY)
            .weigher(move |_, entry: &Arc<CachedPack>| weight(entry.bytes, entry.memory, bounds))
            .eviction_listener({
                let metrics = metrics.clone();
                move |_, entry: Arc<CachedPack>, cause: moka::notification::RemovalCause| {
                    if cause.was_evicted() {
                        metrics
                            .cache_evictions
                            .with_label_values(&[CACHE_NAME])
                            .inc();
                    }
                    for file in &entry.files {
                        let _ = std::fs::remove_file(file);
                    }
                }
            })
            .build();
        Ok(PackCache {
            dir,
            bounds,
            range_reads_above: u64::MAX,
            index_range_reads_above: u64::MAX,
            metrics: metrics.clone(),
            open,
            index_fills: tokio_util::task::TaskTracker::new(),
            warmed: moka::sync::Cache::builder()
                .max_capacity(WARMED_REPOS)
                .time_to_live(WARMED_FOR)
                .build(),
        })
    }

    /// Read packs larger than `bytes` by ranges instead of downloading them
    /// whole (by default every pack is downloaded whole).
    pub fn with_range_reads_above(mut self, bytes: u64) -> Self {
        self.range_reads_above = bytes;
        self
    }

    /// Read the index of a pack read by ranges by ranges too when it is larger
    /// than `bytes` (see [`RangedIndexFile`]; by default every index is
    /// downloaded whole).
    pub fn with_index_range_reads_above(mut self, bytes: u64) -> Self {
        self.index_range_reads_above = bytes;
        self
    }

    /// Wait until the indexes read by ranges that are coming down whole behind
    /// their first request are in.
    pub async fn index_fills_done(&self) {
        self.index_fills.close();
        self.index_fills.wait().await;
        self.index_fills.reopen();
    }

    /// Bytes of memory the opened packs in the cache may come to hold.
    pub async fn open_pack_bytes(&self) -> u64 {
        self.held().await.1
    }

    /// What the cache holds, in one pass over it once pending evictions are
    /// done: downloaded bytes, and the memory weighed against the memory bound.
    async fn held(&self) -> (u64, u64) {
        self.open.run_pending_tasks().await;
        self.open.iter().fold((0, 0), |(disk, memory), (_, entry)| {
            (disk + entry.bytes, memory + entry.memory)
        })
    }

    /// Report what the cache holds and may hold to the metrics: downloaded
    /// bytes, and the memory of the opened packs' tables.
    pub async fn report(&self) {
        let (held, memory) = self.held().await;
        let gauge = |g: &prometheus::IntGaugeVec, name: &str, v: u64| {
            g.with_label_values(&[name])
                .set(v.try_into().unwrap_or(i64::MAX))
        };
        gauge(&self.metrics.cache_bytes, CACHE_NAME, held);
        gauge(&self.metrics.cache_capacity, CACHE_NAME, self.bounds.disk);
        gauge(&self.metrics.cache_bytes, OPEN_PACKS_NAME, memory);
        gauge(
            &self.metrics.cache_capacity,
            OPEN_PACKS_NAME,
            self.bounds.memory,
        );
    }

    /// Whether `repo`'s packs are to be opened ahead of a fetch now: not when
    /// that was done lately (and it is noted as done).
    pub fn warm_up_due(&self, repo: &RepoId) -> bool {
        let mut due = false;
        self.warmed
            .get_with(repo.as_str().to_string(), || due = true);
        due
    }

    /// Bytes of downloaded packs held in the cache directory.
    pub async fn downloaded_bytes(&self) -> u64 {
        self.held().await.0
    }

    /// The opened pack: the store's local file, or a download into the cache dir;
    /// with its commit-graph when `lengths` gives its length.
    pub async fn open(
        &self,
        store: &Arc<dyn ObjectStorageBackend>,
        repo: &RepoId,
        hash: &ObjectId,
        lengths: StoredLengths,
    ) -> Result<Arc<PackHandle>, GitError> {
        let key = (repo.as_str().to_string(), *hash, lengths.graph.is_some());
        let mut loaded = false;
        let load = async {
            loaded = true;
            // Boxed: three downloads side by side make a large future.
            Box::pin(self.load(store, repo, hash, lengths)).await
        };
        let entry = self.open.try_get_with(key, load).await?;
        self.metrics.cache_lookup(CACHE_NAME, !loaded);
        if loaded {
            // Evict now rather than on some later call, so the disk bound holds
            // as soon as the download is in.
            self.open.run_pending_tasks().await;
            // An index read by ranges comes down whole behind the request that
            // opened it: later requests then find every id local.
            if entry.handle.index_filled_bytes().is_some() {
                let handle = entry.handle.clone();
                let pack = *hash;
                self.index_fills.spawn(crate::metrics::spawn_blocking(move || {
                    if let Err(err) = handle.fill_index() {
                        tracing::debug!(%pack, error = %err, "reading the rest of a pack index failed; its ids are read as lookups need them");
                    }
                }));
            }
        }
        Ok(entry.handle.clone())
    }

    async fn load(
        &self,
        store: &Arc<dyn ObjectStorageBackend>,
        repo: &RepoId,
        hash: &ObjectId,
        lengths: StoredLengths,
    ) -> Result<Arc<CachedPack>, GitError> {
        let StoredLengths { pack, index, graph } = lengths;
        let pack_key = ObjectKey::pack(repo, hash);
        let index_key = ObjectKey::pack_index(repo, hash);
        let graph_key = ObjectKey::pack_graph(repo, hash);
        let mut ranged = None;
        let mut ranged_index = None;
        let mut early_order = None;
        let mut graph_opened = None;
        let graph_path;
        let (index_path, files, bytes) =
            match (store.local_path(&pack_key), store.local_path(&index_key)) {
                (Some(_), Some(index)) => {
                    graph_path = store.local_path(&graph_key).filter(|_| graph.is_some());
                    (index, Vec::new(), 0)
                }
                _ => {
                    let dir = self.dir.join(repo.as_str());
                    tokio::fs::create_dir_all(&dir)
                        .await
                        .map_err(GitError::io("making room for a downloaded pack"))?;
                    let nonce = uuid::Uuid::new_v4().simple().to_string();
                    let pack_path = dir.join(format!("pack-{hash}-{nonce}.pack"));
                    let index_path = dir.join(format!("pack-{hash}-{nonce}.idx"));
                    // Asked of the store only when it decides how the pack is read.
                    let pack_len = match (self.range_reads_above, pack) {
                        (_, Some(len)) => Some(len),
                        (u64::MAX, None) => None,
                        (_, None) => Some(store.head(&pack_key).await?.size),
                    };
                    let mut files = vec![pack_path.clone(), index_path.clone()];
                    let graph_file = graph.map(|_| dir.join(format!("pack-{hash}-{nonce}.graph")));
                    files.extend(graph_file.clone());
                    // The index, the pack (unless read by ranges) and the graph
                    // come down side by side: on a fresh instance their round
                    // trips, not their bytes, are most of a first request.
                    // A pack read by ranges reads what opening it reads (its
                    // first and last blocks) meanwhile, and an index over its
                    // own bound all but its object ids (see `RangedIndexFile`):
                    // the rest comes down behind the first request (see `open`).
                    let index_download = async {
                        let index_len = match (pack_len, index) {
                            (Some(len), Some(index_len)) if len > self.range_reads_above => {
                                Some(index_len)
                            }
                            (Some(len), None)
                                if len > self.range_reads_above
                                    && self.index_range_reads_above != u64::MAX =>
                            {
                                Some(store.head(&index_key).await?.size)
                            }
                            _ => None,
                        };
                        match index_len {
                            Some(index_len) if index_len > self.index_range_reads_above => {
                                let source = StoreRanges::new(store, index_key.clone());
                                let path = index_path.clone();
                                let file = move || {
                                    RangedIndexFile::create(&path, index_len, Box::new(source))
                                };
                                ranged_index = Some(crate::metrics::spawn_blocking(file).await??);
                                Ok(index_len)
                            }
                            _ => Ok(store
                                .get_to_file(&index_key, &index_path, index_len.or(index))
                                .await?),
                        }
                    };
                    let pack_download = async {
                        match pack_len {
                            Some(len) if len > self.range_reads_above => {
                                let source = StoreRanges::new(store, pack_key.clone());
                                let path = pack_path.clone();
                                let file =
                                    move || RangedPackFile::create(&path, len, Box::new(source));
                                let file = crate::metrics::spawn_blocking(file).await??;
                                ranged = Some(file);
                                Ok(len)
                            }
                            _ => Ok(store.get_to_file(&pack_key, &pack_path, pack_len).await?),
                        }
                    };
                    // A graph read by ranges is opened (its first block read)
                    // while the index and pack come down: it needs neither.
                    let graph_download = async {
                        match (&graph_file, graph) {
                            // Its tip entries are read as requests send them.
                            (Some(path), Some(len))
                                if self.range_reads_above != u64::MAX
                                    && len > GRAPH_RANGE_READS_ABOVE =>
                            {
                                let source = StoreRanges::new(store, graph_key.clone());
                                let path = path.clone();
                                let open =
                                    move || CommitGraph::open_sparse(&path, len, Box::new(source));
                                let opened = crate::metrics::spawn_blocking(open).await?;
                                Ok::<_, GitError>((len, Some(opened)))
                            }
                            (Some(path), _) => {
                                Ok((store.get_to_file(&graph_key, path, graph).await?, None))
                            }
                            (None, _) => Ok((0, None)),
                        }
                    };
                    let order_ahead = order_ahead(store, &index_key, pack_len, index, self);
                    let (downloads, ahead) = tokio::join!(
                        async { tokio::try_join!(index_download, pack_download, graph_download) },
                        order_ahead
                    );
                    early_order = ahead;
                    let (index_bytes, pack_bytes, (graph_bytes, opened)) = match downloads {
                        Ok(sizes) => sizes,
                        Err(err) => {
                            for file in &files {
                                let _ = tokio::fs::remove_file(file).await;
                            }
                            return Err(err);
                        }
                    };
                    graph_opened = opened;
                    graph_path = graph_file;
                    (index_path, files, index_bytes + pack_bytes + graph_bytes)
                }
            };
        let downloaded = !files.is_empty();
        let handle = crate::metrics::spawn_blocking(move || {
            let handle = match (ranged, ranged_index) {
                (Some(file), Some(index)) => PackHandle::open_ranged_index(index, file),
                (Some(file), None) => PackHandle::open_ranged(&index_path, file),
                (None, _) => PackHandle::open(&index_path),
            }?;
            let handle = match early_order {
                Some(order) => handle.with_order(order),
                None => handle,
            };
            // A graph downloaded whole is checked against its checksum; one
            // opened where the filesystem store keeps it is trusted as the
            // pack and index beside it are (see `CommitGraph::open_trusted`).
            let open_graph = |path: &std::path::Path| match graph_opened {
                Some(opened) => opened,
                None if downloaded => CommitGraph::open(path),
                None => CommitGraph::open_trusted(path),
            };
            Ok::<_, PackError>(match graph_path.map(|p| (open_graph(&p), p)) {
                Some((Ok(graph), _)) => handle.with_commit_graph(graph),
                Some((Err(err), path)) => {
                    // Only a shortcut: the pack is served by parsing its commits.
                    tracing::warn!(pack = %handle.hash(), path = %path.display(), error = %err, "a pack's commit-graph is unreadable; its commits are parsed instead");
                    handle
                }
                None => handle,
            })
        })
        .await?;
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
            // A download's tables are bounded through its bytes (a pack takes
            // far more disk than its tables take memory); counting them against
            // the memory bound too would delete a very large pack's download
            // whenever its tables alone passed that bound, to fetch it again for
            // the next request. A pack read in place costs only a reopen.
            memory: if files.is_empty() {
                handle.heap_bytes_at_most()
            } else {
                0
            },
            handle: Arc::new(handle),
            files,
            bytes,
        }))
    }
}

/// For a pack that `cache` reads by ranges and whose index it downloads whole
/// (one read by ranges builds the order itself), its entry order built from
/// its index's offset table, read by range while the rest of the index comes
/// down (see [`EarlyOrder`]). Only a shortcut: `None` leaves the order to be
/// built from the index when first needed.
async fn order_ahead(
    store: &Arc<dyn ObjectStorageBackend>,
    index_key: &ObjectKey,
    pack_len: Option<u64>,
    index_len: Option<u64>,
    cache: &PackCache,
) -> Option<EarlyOrder> {
    let len = pack_len.filter(|len| *len > cache.range_reads_above)?;
    let index_len = index_len.filter(|len| *len <= cache.index_range_reads_above)?;
    let range = EarlyOrder::offsets_range(len, index_len)?;
    let table = match get_range_in_parts(store, index_key, range).await {
        Ok(table) => table,
        Err(err) => {
            tracing::debug!(key = %index_key, error = %err, "reading a pack index's offsets ahead failed");
            return None;
        }
    };
    let build = move || EarlyOrder::build(&table);
    crate::metrics::spawn_blocking(build).await.ok()?.ok()
}

/// Longest part of [`get_range_in_parts`].
const RANGE_PART_BYTES: u64 = 4 << 20;

/// The bytes of `range` of a stored file, read in parts of at most
/// [`RANGE_PART_BYTES`], [`PARALLEL_RANGE_READS`] at once: the offset table
/// of an index of millions of objects is tens of MB, and one GET of it took
/// longer than the download of the whole index beside it.
async fn get_range_in_parts(
    store: &Arc<dyn ObjectStorageBackend>,
    key: &ObjectKey,
    range: Range<u64>,
) -> gitclaw_storage::Result<Vec<u8>> {
    let parts: Vec<Range<u64>> = (range.start..range.end)
        .step_by(RANGE_PART_BYTES as usize)
        .map(|start| start..start.saturating_add(RANGE_PART_BYTES).min(range.end))
        .collect();
    let mut out = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
    for part in get_ranges(store, key, &parts).await? {
        out.extend_from_slice(&part);
    }
    Ok(out)
}

/// The bytes of each of `ranges` of a stored file, in order, read
/// [`PARALLEL_RANGE_READS`] at once; a short answer is an error (whatever
/// follows it would be out of place).
async fn get_ranges(
    store: &Arc<dyn ObjectStorageBackend>,
    key: &ObjectKey,
    ranges: &[Range<u64>],
) -> gitclaw_storage::Result<Vec<Vec<u8>>> {
    futures_util::stream::iter(ranges.iter().cloned())
        .map(|range| async move {
            let bytes = store.get_range(key, range.clone()).await?;
            if bytes.len() as u64 != range.end - range.start {
                return Err(gitclaw_storage::StorageError::Corrupted {
                    key: key.to_string(),
                    detail: format!(
                        "a read of bytes {}..{} returned {}",
                        range.start,
                        range.end,
                        bytes.len()
                    ),
                });
            }
            // The read's own buffer, not a copy of it.
            Ok(Vec::from(bytes))
        })
        .buffered(PARALLEL_RANGE_READS)
        .try_collect()
        .await
}

/// The lengths of a stored pack's files as its record gives them: each spares
/// asking the store, and a download of a known length may come down in parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredLengths {
    pub pack: Option<u64>,
    pub index: Option<u64>,
    /// The commit-graph's; `None` when the pack has none.
    pub graph: Option<u64>,
}

impl From<&PackRecord> for StoredLengths {
    fn from(record: &PackRecord) -> StoredLengths {
        StoredLengths {
            pack: Some(record.pack_bytes),
            index: Some(record.index_bytes),
            graph: record.graph_bytes,
        }
    }
}

/// Ranged reads of one stored pack, for [`PackHandle::open_sparse`]: made
/// from the pack engine's blocking threads, on the runtime of the server.
struct StoreRanges {
    store: Arc<dyn ObjectStorageBackend>,
    key: ObjectKey,
    runtime: tokio::runtime::Handle,
}

/// A commit-graph longer than this is read by ranges, as its tip entries are
/// needed (see `CommitGraph::open_sparse`); a shorter one is downloaded whole.
const GRAPH_RANGE_READS_ABOVE: u64 = gitclaw_pack::odb::BLOCK_BYTES;

/// Ranged reads of one pack in flight at once when several are asked for together.
const PARALLEL_RANGE_READS: usize = 4;

impl StoreRanges {
    fn new(store: &Arc<dyn ObjectStorageBackend>, key: ObjectKey) -> Self {
        StoreRanges {
            store: store.clone(),
            key,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl RangeSource for StoreRanges {
    fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>, PackError> {
        Ok(self.read_ranges(std::slice::from_ref(&range))?.remove(0))
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>, PackError> {
        self.runtime
            .block_on(get_ranges(&self.store, &self.key, ranges))
            .map_err(|err| PackError::Backend(Box::new(err)))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        ops::Range,
        path::Path,
        process::Command,
        sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    };

    use bytes::Bytes;
    use gitclaw_storage::{
        FilesystemBackend, KeyPrefix, ObjectMeta, PutOptions, Result as StoreResult,
    };

    use super::*;

    /// The filesystem store as S3 looks to the cache: no local files, so every
    /// pack is downloaded; downloads are counted.
    #[derive(Debug)]
    struct Remote {
        inner: FilesystemBackend,
        downloads: AtomicUsize,
        /// Bytes read by ranged reads of packs, and of indexes.
        ranged: AtomicU64,
        ranged_index: AtomicU64,
        heads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl ObjectStorageBackend for Remote {
        fn name(&self) -> &'static str {
            "remote"
        }
        async fn put(&self, key: &ObjectKey, data: Bytes, opts: &PutOptions) -> StoreResult<()> {
            self.inner.put(key, data, opts).await
        }
        async fn put_file(
            &self,
            key: &ObjectKey,
            path: &Path,
            opts: &PutOptions,
        ) -> StoreResult<()> {
            self.inner.put_file(key, path, opts).await
        }
        async fn get(&self, key: &ObjectKey) -> StoreResult<Bytes> {
            self.inner.get(key).await
        }
        async fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> StoreResult<Bytes> {
            let counter = match key.as_str().ends_with(".idx") {
                true => &self.ranged_index,
                false => &self.ranged,
            };
            counter.fetch_add(range.end - range.start, Ordering::SeqCst);
            self.inner.get_range(key, range).await
        }
        async fn get_to_file(
            &self,
            key: &ObjectKey,
            dest: &Path,
            len: Option<u64>,
        ) -> StoreResult<u64> {
            self.downloads.fetch_add(1, Ordering::SeqCst);
            self.inner.get_to_file(key, dest, len).await
        }
        async fn head(&self, key: &ObjectKey) -> StoreResult<ObjectMeta> {
            self.heads.fetch_add(1, Ordering::SeqCst);
            self.inner.head(key).await
        }
        async fn delete(&self, key: &ObjectKey) -> StoreResult<()> {
            self.inner.delete(key).await
        }
        async fn list(&self, prefix: &KeyPrefix) -> StoreResult<Vec<ObjectMeta>> {
            self.inner.list(prefix).await
        }
        async fn delete_prefix(&self, prefix: &KeyPrefix) -> StoreResult<u64> {
            self.inner.delete_prefix(prefix).await
        }
        async fn copy_prefix(&self, from: &KeyPrefix, to: &KeyPrefix) -> StoreResult<u64> {
            self.inner.copy_prefix(from, to).await
        }
    }

    /// A cache downloading into `dir`, with room (1 GiB each) for every test's packs.
    fn roomy_cache(dir: PathBuf) -> PackCache {
        PackCache::new(dir, 1 << 30, 1 << 30, &Default::default()).unwrap()
    }

    /// A scratch directory, a remote store in it, and a repository id.
    fn remote() -> (tempfile::TempDir, Arc<Remote>, RepoId) {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(Remote {
            inner: FilesystemBackend::new(root.path().join("store")).unwrap(),
            downloads: AtomicUsize::new(0),
            ranged: AtomicU64::new(0),
            ranged_index: AtomicU64::new(0),
            heads: AtomicUsize::new(0),
        });
        (root, store, RepoId::new("r1").unwrap())
    }

    #[tokio::test]
    async fn a_range_read_in_parts_is_the_stored_bytes_and_a_short_part_is_an_error() {
        let (_root, store, repo) = remote();
        let key = ObjectKey::pack_index(&repo, &ObjectId::from_bytes_or_panic(&[7; 20]));
        let data: Vec<u8> = (0..(2 * RANGE_PART_BYTES + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        store
            .put(&key, Bytes::from(data.clone()), &PutOptions::default())
            .await
            .unwrap();
        let store: Arc<dyn ObjectStorageBackend> = store;
        // Across three parts, starting and ending inside one.
        let range = 1_000..data.len() as u64 - 7;
        let read = get_range_in_parts(&store, &key, range.clone())
            .await
            .unwrap();
        assert_eq!(read, &data[range.start as usize..range.end as usize]);
        // A range running past the end gets a short last part: refused, not
        // passed on with every later byte out of place.
        let past = 1_000..data.len() as u64 + 100;
        assert!(get_range_in_parts(&store, &key, past).await.is_err());
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A pack made by git from `files` (name, size), stored under `repo`; its hash and bytes.
    async fn stored_pack(
        store: &Remote,
        repo: &RepoId,
        files: &[(&str, usize)],
    ) -> (ObjectId, u64) {
        let (hash, bytes, _) = stored_pack_and_graph(store, repo, files).await;
        (hash, bytes)
    }

    /// [`stored_pack`], with the commit-graph git writes for the pack's
    /// commit (not stored): the format compaction writes, without its chunks.
    async fn stored_pack_and_graph(
        store: &Remote,
        repo: &RepoId,
        files: &[(&str, usize)],
    ) -> (ObjectId, u64, Vec<u8>) {
        let work = tempfile::tempdir().unwrap();
        git(work.path(), &["init", "-q"]);
        for (i, (name, size)) in files.iter().enumerate() {
            std::fs::write(work.path().join(name), content(i, *size)).unwrap();
        }
        git(work.path(), &["add", "."]);
        git(work.path(), &["commit", "-qm", "files"]);
        git(work.path(), &["repack", "-qad"]);
        let packs = work.path().join(".git/objects/pack");
        let index = std::fs::read_dir(&packs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        let hash = index
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("pack-");
        let hash = ObjectId::from_hex(hash.as_bytes()).unwrap();
        let pack = index.with_extension("pack");
        store
            .put_file(&ObjectKey::pack(repo, &hash), &pack, &PutOptions::pack())
            .await
            .unwrap();
        store
            .put_file(
                &ObjectKey::pack_index(repo, &hash),
                &index,
                &PutOptions::pack_index(),
            )
            .await
            .unwrap();
        let bytes =
            std::fs::metadata(&pack).unwrap().len() + std::fs::metadata(&index).unwrap().len();
        git(work.path(), &["commit-graph", "write", "--reachable"]);
        let graph = std::fs::read(work.path().join(".git/objects/info/commit-graph")).unwrap();
        (hash, bytes, graph)
    }

    /// The content of file number `i` of a stored pack: letters that deflate
    /// little, so a pack of them is about as large as its files.
    fn content(i: usize, size: usize) -> Vec<u8> {
        let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            })
            .collect()
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_in(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }

    #[tokio::test]
    async fn downloads_stay_within_the_bound_least_recently_used_going_first() {
        let (root, store, repo) = remote();
        let (a, a_bytes) = stored_pack(&store, &repo, &[("one.txt", 4000)]).await;
        let (b, b_bytes) =
            stored_pack(&store, &repo, &[("two.txt", 5000), ("three.txt", 3000)]).await;
        let dir = root.path().join("cache");
        // Room for either pack, not for both.
        let metrics: Arc<Metrics> = Default::default();
        let cache = PackCache::new(
            dir.clone(),
            a_bytes.max(b_bytes) + a_bytes.min(b_bytes) / 2,
            1 << 30,
            &metrics,
        )
        .unwrap();
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();

        let first = cache
            .open(&dyn_store, &repo, &a, StoredLengths::default())
            .await
            .unwrap();
        assert_eq!(first.hash(), &a);
        assert_eq!(cache.downloaded_bytes().await, a_bytes);
        assert_eq!(files_in(&dir), 2, "the pack and its index");
        cache
            .open(&dyn_store, &repo, &a, StoredLengths::default())
            .await
            .unwrap();
        assert_eq!(
            store.downloads.load(Ordering::SeqCst),
            2,
            "the second open reuses the download"
        );

        cache
            .open(&dyn_store, &repo, &b, StoredLengths::default())
            .await
            .unwrap();
        assert_eq!(
            cache.downloaded_bytes().await,
            b_bytes,
            "the older download went"
        );
        assert_eq!(files_in(&dir), 2, "its files went with it");
        // A handle taken before the eviction still reads its pack.
        assert!(first.num_objects() > 0);

        cache
            .open(&dyn_store, &repo, &a, StoredLengths::default())
            .await
            .unwrap();
        assert_eq!(
            store.downloads.load(Ordering::SeqCst),
            6,
            "what went is downloaded again"
        );
    }

    #[tokio::test]
    async fn packs_read_in_place_stay_within_the_memory_bound_least_recently_used_going_first() {
        let (root, store, repo) = remote();
        let (a, _) = stored_pack(&store, &repo, &[("one.txt", 100), ("two.txt", 100)]).await;
        let (b, _) = stored_pack(&store, &repo, &[("three.txt", 100)]).await;
        // The same files, as the filesystem store serves them: read in place.
        let in_place = FilesystemBackend::new(root.path().join("store")).unwrap();
        let dyn_store: Arc<dyn ObjectStorageBackend> = Arc::new(in_place);
        async fn open_in(
            cache: &PackCache,
            store: &Arc<dyn ObjectStorageBackend>,
            repo: &RepoId,
            hash: ObjectId,
        ) -> Arc<PackHandle> {
            let lengths = StoredLengths::default();
            cache.open(store, repo, &hash, lengths).await.unwrap()
        }
        let open = |cache, hash| open_in(cache, &dyn_store, &repo, hash);
        // What each handle may hold, from a cache with room for everything.
        let roomy = PackCache::new(
            root.path().join("roomy"),
            1 << 40,
            1 << 40,
            &Default::default(),
        )
        .unwrap();
        let a_memory = open(&roomy, a).await.heap_bytes_at_most();
        let b_memory = open(&roomy, b).await.heap_bytes_at_most();
        assert!(a_memory > b_memory && b_memory > 0, "{a_memory} {b_memory}");

        // Disk for everything; memory for either pack's tables, not for both.
        let cache = PackCache::new(
            root.path().join("cache"),
            1 << 40,
            a_memory + b_memory / 2,
            &Default::default(),
        )
        .unwrap();
        let first = open(&cache, a).await;
        assert_eq!(cache.open_pack_bytes().await, a_memory);
        assert!(
            Arc::ptr_eq(&first, &open(&cache, a).await),
            "the second open reuses the handle"
        );
        open(&cache, b).await;
        assert_eq!(
            cache.open_pack_bytes().await,
            b_memory,
            "the older handle went"
        );
        let reopened = open(&cache, a).await;
        assert!(!Arc::ptr_eq(&first, &reopened), "what went is opened anew");
        // A handle taken before it went still reads its pack.
        assert_eq!(first.num_objects(), reopened.num_objects());
        assert_eq!(
            store.downloads.load(Ordering::SeqCst),
            0,
            "all read in place"
        );
    }

    #[tokio::test]
    async fn a_downloaded_graph_is_checked_against_its_checksum_and_one_read_in_place_is_not() {
        let (root, store, repo) = remote();
        let (hash, _, graph) = stored_pack_and_graph(&store, &repo, &[("one.txt", 100)]).await;
        // One byte of the commit's data (its tree's id) changed: the layout
        // still reads, the checksum no longer matches.
        let chunk = graph[8..]
            .chunks_exact(12)
            .find(|entry| &entry[..4] == b"CDAT")
            .map(|entry| u64::from_be_bytes(entry[4..12].try_into().unwrap()))
            .expect("a commit data chunk") as usize;
        let mut changed = graph.clone();
        changed[chunk] ^= 0x01;
        let key = ObjectKey::pack_graph(&repo, &hash);
        let in_place: Arc<dyn ObjectStorageBackend> =
            Arc::new(FilesystemBackend::new(root.path().join("store")).unwrap());
        let remote: Arc<dyn ObjectStorageBackend> = store.clone();
        for (i, bytes) in [&graph, &changed].into_iter().enumerate() {
            store
                .put(&key, Bytes::from(bytes.clone()), &PutOptions::pack_graph())
                .await
                .unwrap();
            let lengths = StoredLengths {
                graph: Some(bytes.len() as u64),
                ..Default::default()
            };
            let cache = |name: &str| roomy_cache(root.path().join(format!("{name}{i}")));
            let downloaded = cache("down").open(&remote, &repo, &hash, lengths).await;
            let read_in_place = cache("here").open(&in_place, &repo, &hash, lengths).await;
            let intact = bytes == &graph;
            // Downloaded: refused once changed (its commits are then parsed).
            assert_eq!(downloaded.unwrap().commit_graph().is_some(), intact);
            // Where compaction stored it: trusted as the pack beside it is.
            assert!(read_in_place.unwrap().commit_graph().is_some());
        }
    }

    #[tokio::test]
    async fn a_download_is_kept_by_its_bytes_whatever_its_tables_take() {
        let (root, store, repo) = remote();
        let (a, _) = stored_pack(&store, &repo, &[("one.txt", 100)]).await;
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();
        // No memory at all for tables: a pack read in place would be reopened
        // for each request, but a download stays, and is not fetched again.
        let cache =
            PackCache::new(root.path().join("cache"), 1 << 30, 0, &Default::default()).unwrap();
        let lengths = StoredLengths::default();
        let first = cache.open(&dyn_store, &repo, &a, lengths).await.unwrap();
        let again = cache.open(&dyn_store, &repo, &a, lengths).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(
            store.downloads.load(Ordering::SeqCst),
            2,
            "pack and index, once"
        );
        assert_eq!(cache.open_pack_bytes().await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pack_read_by_ranges_has_its_index_read_by_ranges_and_whole_behind_the_first_request()
    {
        let (root, store, repo) = remote();
        let names: Vec<String> = (0..30).map(|i| format!("f{i:02}.txt")).collect();
        let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 100_000)).collect();
        let (a, _) = stored_pack(&store, &repo, &files).await;
        let pack = store.head(&ObjectKey::pack(&repo, &a)).await.unwrap().size;
        let index_key = ObjectKey::pack_index(&repo, &a);
        let index = store.get(&index_key).await.unwrap();
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();
        let mut orders = Vec::new();
        // With the index's length recorded, and without (asked of the store).
        for (i, index_len) in [Some(index.len() as u64), None].into_iter().enumerate() {
            let cache = roomy_cache(root.path().join(format!("cache{i}")))
                .with_range_reads_above(1 << 20)
                .with_index_range_reads_above(1 << 10);
            let (downloads, heads) = (
                store.downloads.load(Ordering::SeqCst),
                store.heads.load(Ordering::SeqCst),
            );
            let lengths = StoredLengths {
                pack: Some(pack),
                index: index_len,
                graph: None,
            };
            let handle = cache.open(&dyn_store, &repo, &a, lengths).await.unwrap();
            assert_eq!(
                store.downloads.load(Ordering::SeqCst),
                downloads,
                "neither the pack nor its index is downloaded whole"
            );
            assert_eq!(
                store.heads.load(Ordering::SeqCst) - heads,
                usize::from(index_len.is_none()),
                "the index's length asked of the store only when not recorded"
            );
            assert!(handle.index_filled_bytes().is_some(), "read by ranges");
            // The rest of the index comes down behind the open.
            cache.index_fills_done().await;
            assert_eq!(handle.index_filled_bytes(), Some(index.len() as u64));
            let local = tokio::fs::read(handle.index_path()).await.unwrap();
            assert_eq!(local, index.to_vec(), "the local index is the stored one");
            orders.push(handle.indices_in_pack_order().collect::<Vec<_>>());
        }
        assert_eq!(orders[0], orders[1], "the same order either way");
        assert_eq!(orders[0].len(), 32, "30 files, their tree and commit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pack_read_by_ranges_has_its_order_built_from_its_index_offsets_read_ahead() {
        let (root, store, repo) = remote();
        let names: Vec<String> = (0..30).map(|i| format!("f{i:02}.txt")).collect();
        let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 100_000)).collect();
        let (a, _) = stored_pack(&store, &repo, &files).await;
        let pack = store.head(&ObjectKey::pack(&repo, &a)).await.unwrap().size;
        let index = store
            .head(&ObjectKey::pack_index(&repo, &a))
            .await
            .unwrap()
            .size;
        let table = EarlyOrder::offsets_range(pack, index).unwrap();
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();
        let mut orders = Vec::new();
        let mut ranged = Vec::new();
        // Without the index's length the offsets cannot be found ahead: the
        // order is built from the index when first needed, as before.
        for (i, index) in [None, Some(index)].into_iter().enumerate() {
            let cache =
                roomy_cache(root.path().join(format!("cache{i}"))).with_range_reads_above(1 << 20);
            let before = store.ranged_index.load(Ordering::SeqCst);
            let lengths = StoredLengths {
                pack: Some(pack),
                index,
                graph: None,
            };
            let handle = cache.open(&dyn_store, &repo, &a, lengths).await.unwrap();
            ranged.push(store.ranged_index.load(Ordering::SeqCst) - before);
            orders.push(handle.indices_in_pack_order().collect::<Vec<_>>());
        }
        assert_eq!(
            ranged[1] - ranged[0],
            table.end - table.start,
            "the offset table is read ahead, by itself"
        );
        assert_eq!(orders[0], orders[1], "the same order either way");
        assert_eq!(orders[0].len(), 32, "30 files, their tree and commit");
    }

    #[tokio::test]
    async fn concurrent_first_opens_download_once() {
        let (root, store, repo) = remote();
        let (a, _) = stored_pack(&store, &repo, &[("one.txt", 4000)]).await;
        let cache = roomy_cache(root.path().join("cache"));
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();
        let opens = (0..8).map(|_| cache.open(&dyn_store, &repo, &a, StoredLengths::default()));
        for handle in futures_util::future::join_all(opens).await {
            assert_eq!(handle.unwrap().hash(), &a);
        }
        assert_eq!(
            store.downloads.load(Ordering::SeqCst),
            2,
            "one pack and one index download"
        );
    }

    #[tokio::test]
    async fn a_pack_larger_than_the_bound_is_served_and_not_kept() {
        let (root, store, repo) = remote();
        let (a, _) = stored_pack(&store, &repo, &[("one.txt", 4000)]).await;
        let dir = root.path().join("cache");
        let cache = PackCache::new(dir.clone(), 100, 1 << 30, &Default::default()).unwrap();
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();
        let handle = cache
            .open(&dyn_store, &repo, &a, StoredLengths::default())
            .await
            .unwrap();
        assert!(handle.num_objects() > 0);
        assert_eq!(cache.downloaded_bytes().await, 0);
        assert_eq!(files_in(&dir), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_big_pack_is_read_by_ranges_only_as_far_as_it_is_needed() {
        let (root, store, repo) = remote();
        let names: Vec<String> = (0..90).map(|i| format!("f{i:02}.txt")).collect();
        let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 100_000)).collect();
        let (a, bytes) = stored_pack(&store, &repo, &files).await;
        let pack_len = store.head(&ObjectKey::pack(&repo, &a)).await.unwrap().size;
        let index_len = store
            .head(&ObjectKey::pack_index(&repo, &a))
            .await
            .unwrap()
            .size;
        assert!(pack_len > 4 * gitclaw_pack::odb::BLOCK_BYTES);
        let cache = roomy_cache(root.path().join("cache")).with_range_reads_above(1 << 20);
        let dyn_store: Arc<dyn ObjectStorageBackend> = store.clone();
        let heads = store.heads.load(Ordering::SeqCst);
        let handle = cache
            .open(
                &dyn_store,
                &repo,
                &a,
                StoredLengths {
                    pack: Some(pack_len),
                    index: Some(index_len),
                    graph: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.downloads.load(Ordering::SeqCst),
            1,
            "only the index, under the bound, is downloaded whole"
        );
        assert_eq!(
            store.heads.load(Ordering::SeqCst),
            heads,
            "the recorded lengths spare asking the store"
        );
        assert_eq!(
            cache.downloaded_bytes().await,
            bytes,
            "weighed at full length"
        );

        // One file, read back through the pack, is the file; reading it took
        // its block, not the pack.
        let wanted = 45;
        let id = gix_object::compute_hash(
            gix_hash::Kind::Sha1,
            gix_object::Kind::Blob,
            &content(wanted, 100_000),
        )
        .unwrap();
        let read = {
            let handle = handle.clone();
            tokio::task::spawn_blocking(move || {
                let index = handle
                    .lookup(&id)
                    .unwrap()
                    .expect("the blob is in the pack");
                let mut buf = Vec::new();
                let mut state = gitclaw_pack::odb::DecodeState::default();
                let kind = handle.decode(index, &mut buf, &mut state).unwrap();
                (kind, buf)
            })
            .await
            .unwrap()
        };
        assert_eq!(read, (gix_object::Kind::Blob, content(wanted, 100_000)));
        let after_one = store.ranged.load(Ordering::SeqCst);
        assert!(
            after_one <= 4 * gitclaw_pack::odb::BLOCK_BYTES && after_one < pack_len,
            "read {after_one} of {pack_len} bytes for one object"
        );
        // The pack's short last block (its trailer, read at open) was read a
        // block long: the bytes before it in that read count as read, not as
        // filled, and are read again with their own block.
        let block = gitclaw_pack::odb::BLOCK_BYTES;
        let short_tail = match pack_len % block {
            0 => 0,
            last => block - last,
        };
        assert_eq!(handle.filled_bytes(), Some(after_one - short_tail));

        // Reading every entry fills the rest, and the file is then the pack.
        let whole = tokio::task::spawn_blocking({
            let handle = handle.clone();
            move || handle.raw_pack().unwrap().to_vec()
        })
        .await
        .unwrap();
        let stored = store.get(&ObjectKey::pack(&repo, &a)).await.unwrap();
        assert_eq!(whole, stored.to_vec());
        assert_eq!(
            store.ranged.load(Ordering::SeqCst),
            pack_len + short_tail,
            "each byte read once, but for those read with the short last block"
        );
    }

    proptest::proptest! {
        /// Entries whose weights fit the capacity fit each bound, whatever the
        /// bounds (the test walks entries in, as the cache admits them); one over
        /// either bound by itself never fits.
        #[test]
        fn weights_within_the_capacity_keep_both_bounds(
            disk_bound in 0u64..(64 << 30),
            memory_bound in 0u64..(4 << 30),
            entries in proptest::collection::vec((0u64..(8 << 30), 0u64..(1 << 30)), 1..40),
        ) {
            let bounds = Bounds { disk: disk_bound, memory: memory_bound };
            let (mut units, mut disk, mut memory) = (0u64, 0u64, 0u64);
            for (d, m) in entries {
                let w = u64::from(weight(d, m, bounds));
                proptest::prop_assert!(w >= 1);
                if d > disk_bound || m > memory_bound {
                    proptest::prop_assert!(w > CAPACITY, "{d} {m} weighs {w}");
                }
                if units + w <= CAPACITY {
                    units += w;
                    disk += d;
                    memory += m;
                }
            }
            proptest::prop_assert!(disk <= disk_bound && memory <= memory_bound);
        }
    }

    #[test]
    fn weights_at_the_edges() {
        let bounds = Bounds {
            disk: 10 << 30,
            memory: 256 << 20,
        };
        assert_eq!(weight(0, 0, bounds), 1);
        assert_eq!(u64::from(weight(10 << 30, 0, bounds)), CAPACITY);
        assert_eq!(u64::from(weight(0, 256 << 20, bounds)), CAPACITY);
        assert_eq!(u64::from(weight(5 << 30, 64 << 20, bounds)), CAPACITY / 2);
        assert!(u64::from(weight(u64::MAX, 0, bounds)) > CAPACITY);
    }
}
