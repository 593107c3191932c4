//! One repository's objects as the pack engine sees them.
//!
//! [`object_db`] turns the metadata's pack list and loose-object index into a
//! pack-engine [`ObjectDb`] without listing the store: the hot path never does a
//! LIST or HEAD. Packs come through the shared [`PackCache`](super::pack_cache);
//! loose objects are read from the store when the engine asks for them.
//!
//! Dual read: while a repository's objects are being moved out of the legacy
//! table (`gitclaw migrate`), what the store has is read from the store and the
//! rest from the table, so the repository is served whole at every moment.

use std::{path::PathBuf, sync::Arc};

use gitclaw_metadata::{LooseRecord, MigrationState, PackRecord, Repo};
use gitclaw_pack::odb::{LooseSource, ObjectCache, ObjectDb};
use gitclaw_pack::{Kind, ObjectId, PackError};
use gitclaw_storage::{ObjectKey, ObjectStorageBackend, RepoId};
use gix_hashtable::HashMap;

use crate::{app::AppState, error::GitError, metrics::StoreRequests};

/// The pack-engine view of a repository's objects: the store's, and — while
/// the repository is not yet migrated — the legacy table's.
pub async fn object_db(state: &AppState, repo: &Repo) -> Result<ObjectDb, GitError> {
    object_db_with(state, repo, true).await
}

/// Open a repository's packs in the background, ahead of the fetch a client
/// asking for `info/refs` is about to make: on a fresh instance their
/// downloads then overlap the client's next round trips (`ls-refs`, and the
/// fetch's own reads of refs and lists) rather than follow them. A fetch
/// arriving meanwhile waits for the same downloads (the pack cache loads each
/// pack once). Done once a while per repository (see
/// [`PackCache::warm_up_due`](super::pack_cache::PackCache::warm_up_due)); a
/// failure is only logged, the fetch meets it again and answers it.
pub fn warm_up(state: &AppState, repo: &Repo) {
    let Ok(repo_id) = RepoId::new(&repo.id) else {
        return;
    };
    if !state.packs.warm_up_due(&repo_id) {
        return;
    }
    let (state, repo) = (state.clone(), repo.clone());
    let warm = async move {
        let opened = Box::pin(object_db(&state, &repo));
        let opened = crate::metrics::background(&state.metrics, "warm-up", opened);
        if let Err(err) = opened.await {
            tracing::debug!(repo = %repo.id, error = %err, "opening a repository's packs ahead of a fetch failed");
        }
    };
    tokio::spawn(tracing::Instrument::in_current_span(warm));
}

/// [`object_db`], its pack and loose lists from the shared cache only when
/// `shared`. A request that read refs from the database must read the lists
/// from it too: refs newer than the version the request started with, next to
/// lists cached for that version, could name objects the lists lack.
pub async fn object_db_with(
    state: &AppState,
    repo: &Repo,
    shared: bool,
) -> Result<ObjectDb, GitError> {
    // The table's index first: a row copied after it is read is in a pack the
    // list below already names; one copied before is left out of the index.
    let legacy = legacy_objects(state, repo).await?;
    let lists = object_lists(state, repo, shared).await?;
    let (packs, loose) = &*lists;
    let db = stored_objects(state, repo, legacy, packs, loose).await?;
    Ok(with_object_cache(state, db))
}

/// The objects of exactly these packs and loose objects (what a compaction
/// read in its snapshot), with an object cache of their own of
/// [`COMPACTION_CACHE_BYTES`]: a compaction reads every tree of the history
/// once and diffs each commit's against its parent's, so a small cache keeps
/// what it reads again, where the shared one (256 MiB by default) would fill
/// with trees no request asks for and evict what requests cached. No legacy
/// table: a repository being migrated is not compacted.
pub async fn listed_object_db(
    state: &AppState,
    repo: &Repo,
    packs: &[PackRecord],
    loose: &[LooseRecord],
) -> Result<ObjectDb, GitError> {
    let db = stored_objects(state, repo, None, packs, loose).await?;
    Ok(db
        .with_cache(Arc::new(ObjectCache::new(COMPACTION_CACHE_BYTES)))
        .with_delta_cache_bytes(COMPACTION_DELTA_CACHE_BYTES))
}

/// The object cache of one compaction (see [`listed_object_db`]): recording
/// a 200k-object closure peaked at 147 MB of RSS without a cache, 160 MB with
/// 8 MiB, 190 MB with 32 MiB and 216 MB with the shared 256 MiB one, in
/// 4.2, 4.4, 4.4 and 4.0 s.
pub const COMPACTION_CACHE_BYTES: usize = 8 << 20;

/// The delta bases each reader of a compaction keeps (a request's keep
/// [`DELTA_CACHE_BYTES`](gitclaw_pack::odb::DELTA_CACHE_BYTES)): a compaction
/// walks every tree of the history once, in history order, so the bases worth
/// keeping are the few versions just read.
pub const COMPACTION_DELTA_CACHE_BYTES: usize = 16 << 20;

fn with_object_cache(state: &AppState, db: ObjectDb) -> ObjectDb {
    if state.config.object_cache_bytes > 0 {
        db.with_cache(state.objects.clone())
    } else {
        db
    }
}

/// The store's objects of a repository alone, read afresh (no legacy table,
/// no object cache): what verifying a migration compares the table with.
pub async fn store_object_db(state: &AppState, repo: &Repo) -> Result<ObjectDb, GitError> {
    let lists = object_lists(state, repo, false).await?;
    let (packs, loose) = &*lists;
    stored_objects(state, repo, None, packs, loose).await
}

/// Packs of one repository opened (downloaded, on a fresh instance) at once.
const PARALLEL_PACK_OPENS: usize = 4;

async fn stored_objects(
    state: &AppState,
    repo: &Repo,
    legacy: Option<LegacyObjects>,
    packs: &[PackRecord],
    loose: &[LooseRecord],
) -> Result<ObjectDb, GitError> {
    let repo_id = RepoId::new(&repo.id)?;
    // Opened side by side: on a fresh instance each is a download.
    let mut handles = Vec::with_capacity(packs.len());
    for some in packs.chunks(PARALLEL_PACK_OPENS) {
        let opens = some.iter().map(|pack| {
            state
                .packs
                .open(&state.store, &repo_id, &pack.pack_hash, pack.into())
        });
        handles.extend(futures_util::future::try_join_all(opens).await?);
    }
    let mut ids: HashMap<ObjectId, (Kind, u64)> = HashMap::default();
    for record in loose {
        let kind = Kind::from_bytes(record.kind.as_bytes()).map_err(|_| {
            gitclaw_metadata::Error::InvalidData(format!(
                "loose object {} has unknown type {}",
                record.oid, record.kind
            ))
        })?;
        ids.insert(record.oid, (kind, record.size));
    }
    let source = StoreLoose {
        repo: repo_id,
        store: state.store.clone(),
        ids,
        legacy,
        runtime: tokio::runtime::Handle::current(),
        scratch: state.scratch.dir.clone(),
        requests: StoreRequests::current(),
    };
    let mut db = ObjectDb::new(handles, Arc::new(source));
    for (index, pack) in packs.iter().enumerate() {
        if let Some(key) = pack.closure_of {
            db = db.with_closure(index, key);
        }
    }
    Ok(db)
}

/// A repository's packs and loose objects, as one read of the database found them.
type ObjectLists = (Vec<PackRecord>, Vec<LooseRecord>);

impl crate::service::shared_cache::Weigh for ObjectLists {
    fn weigh(&self) -> usize {
        let (packs, loose) = self;
        packs.len() * std::mem::size_of::<PackRecord>()
            + loose
                .iter()
                .map(|l| std::mem::size_of::<LooseRecord>() + l.kind.len())
                .sum::<usize>()
    }
}

/// The pack and loose-object lists of a repository, from the shared cache
/// when `shared` and it has them for the repository's version. The two lists
/// are one entry: they must come from the same read (see below).
async fn object_lists(
    state: &AppState,
    repo: &Repo,
    shared: bool,
) -> Result<Arc<ObjectLists>, GitError> {
    if shared {
        if let Some(lists) = state.shared.repo_entry("objects", repo).await {
            return Ok(lists);
        }
    }
    // Loose objects first, packs second: the two lists are read apart, and a
    // compaction committed between them must not hide anything. Objects only
    // ever move from loose objects into packs and from packs into packs, never
    // back, so packs read after the loose list hold everything it lost meanwhile
    // (the replaced keys stay readable for the grace period). Read the other way
    // round, a compaction in between drops its loose objects from both lists.
    let loose = state.meta.list_loose(&repo.id).await?;
    let packs = state.meta.list_packs(&repo.id).await?;
    let lists = Arc::new((packs, loose));
    if shared {
        state
            .shared
            .put_repo_entry(&state.meta, "objects", repo, &lists)
            .await;
    }
    Ok(lists)
}

/// The repository's pack list, from the shared cache when it holds it.
pub async fn pack_list(state: &AppState, repo: &Repo) -> Result<Vec<PackRecord>, GitError> {
    Ok(object_lists(state, repo, true).await?.0.clone())
}

/// The legacy rows of a repository that is not yet migrated, indexed.
async fn legacy_objects(state: &AppState, repo: &Repo) -> Result<Option<LegacyObjects>, GitError> {
    if !state.legacy_table {
        return Ok(None);
    }
    let status = state.meta.migration_status(&repo.id).await?;
    if status.is_some_and(|s| s.state == MigrationState::Migrated) {
        return Ok(None);
    }
    let entries = state.meta.legacy_index(&repo.id).await?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut ids = HashMap::default();
    ids.reserve(entries.len());
    for entry in entries {
        // A row naming no type is still read (its bytes decide); say blob.
        let kind = Kind::from_bytes(entry.object_type.as_bytes()).unwrap_or(Kind::Blob);
        ids.insert(entry.oid, (kind, u64::try_from(entry.size).unwrap_or(0)));
    }
    Ok(Some(LegacyObjects {
        meta: state.meta.clone(),
        repo_id: repo.id.clone(),
        ids,
    }))
}

/// Objects still only in the legacy table: their types and sizes as the table
/// says, their bytes read (and hashed) row by row when asked for.
struct LegacyObjects {
    meta: gitclaw_metadata::Metadata,
    repo_id: String,
    ids: HashMap<ObjectId, (Kind, u64)>,
}

impl LegacyObjects {
    /// The object of row `id`, read right; a row no reading of which hashes to
    /// its id is an error naming it corrupt, never served.
    fn read(
        &self,
        runtime: &tokio::runtime::Handle,
        id: &gitclaw_pack::oid,
    ) -> Result<Option<(Kind, Vec<u8>)>, PackError> {
        let row = runtime
            .block_on(self.meta.legacy_object(&self.repo_id, &id.to_owned()))
            .map_err(|err| PackError::Backend(Box::new(err)))?;
        let Some(row) = row else {
            // Dropped since the index was read: the object is in the store now,
            // but not in the packs this view was given.
            return Err(PackError::Backend(Box::new(std::io::Error::other(
                format!("legacy row {id} went away while being read"),
            ))));
        };
        match super::migrate::decode::decode(row, 4 << 30) {
            Ok(decoded) => Ok(Some((decoded.kind, decoded.content))),
            Err(why) => Err(PackError::Backend(Box::new(std::io::Error::other(
                format!("legacy row {id} is corrupt: {why}"),
            )))),
        }
    }
}

/// Loose objects of one repository: the metadata's index for existence, the store for bytes.
struct StoreLoose {
    repo: RepoId,
    store: Arc<dyn ObjectStorageBackend>,
    /// Loose object ids with their types and inflated sizes.
    ids: HashMap<ObjectId, (Kind, u64)>,
    /// What only the legacy table has, while the repository migrates.
    legacy: Option<LegacyObjects>,
    runtime: tokio::runtime::Handle,
    /// Where big loose objects of a store without local files are downloaded to be streamed.
    scratch: PathBuf,
    /// The git request the reads are for: the pack engine reads from threads
    /// of its own, so its store requests are counted for that request here.
    requests: Option<StoreRequests>,
}

impl LooseSource for StoreLoose {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        self.ids.contains_key(id) || self.legacy_entry(id).is_some()
    }

    fn size(&self, id: &gitclaw_pack::oid) -> Result<Option<u64>, PackError> {
        Ok(self.header(id)?.map(|(_, size)| size))
    }

    fn header(&self, id: &gitclaw_pack::oid) -> Result<Option<(Kind, u64)>, PackError> {
        Ok(self.ids.get(id).or_else(|| self.legacy_entry(id)).copied())
    }

    /// The loose bytes are read from the store's own file, or downloaded into the
    /// scratch directory (unlinked at once: the open file keeps them until the
    /// stream is dropped), and inflated as the stream is read.
    fn open(
        &self,
        id: &gitclaw_pack::oid,
    ) -> Result<Option<gitclaw_pack::odb::ObjectStream>, PackError> {
        if !self.ids.contains_key(id) {
            return Ok(self
                .read_legacy(id)?
                .map(|(kind, data)| gitclaw_pack::odb::ObjectStream {
                    kind,
                    size: data.len() as u64,
                    content: Box::new(std::io::Cursor::new(data)),
                }));
        }
        let key = ObjectKey::loose(&self.repo, id);
        let io = |context: &str| {
            let context = format!("{context} loose object {id}");
            move |source: std::io::Error| PackError::Io { context, source }
        };
        let file = match self.store.local_path(&key) {
            Some(path) => std::fs::File::open(path).map_err(io("opening"))?,
            None => {
                let download = tempfile::Builder::new()
                    .prefix("loose-")
                    .tempfile_in(&self.scratch)
                    .map_err(io("making room for"))?;
                StoreRequests::within(self.requests.as_ref(), || {
                    self.runtime
                        .block_on(self.store.get_to_file(&key, download.path(), None))
                })
                .map_err(|err| PackError::Backend(Box::new(err)))?;
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
        .map_err(|err| PackError::Backend(Box::new(err)))?;
        let (kind, size) = (reader.kind(), reader.size());
        Ok(Some(gitclaw_pack::odb::ObjectStream {
            kind,
            size,
            content: Box::new(StreamErrors(reader)),
        }))
    }

    fn list(&self) -> Vec<(ObjectId, Kind)> {
        let legacy = self.legacy.iter().flat_map(|l| l.ids.iter());
        self.ids
            .iter()
            .chain(legacy)
            .map(|(id, (kind, _))| (*id, *kind))
            .collect()
    }

    fn read(&self, id: &gitclaw_pack::oid) -> Result<Option<(Kind, Vec<u8>)>, PackError> {
        if !self.ids.contains_key(id) {
            return self.read_legacy(id);
        }
        // Called from blocking pack-engine threads, never from the async runtime.
        StoreRequests::within(self.requests.as_ref(), || {
            self.runtime.block_on(gitclaw_storage::get_loose_object(
                &*self.store,
                &self.repo,
                id,
            ))
        })
        .map(Some)
        .map_err(|err| PackError::Backend(Box::new(err)))
    }
}

impl StoreLoose {
    /// The legacy table's type and size of an object the store does not have.
    fn legacy_entry(&self, id: &gitclaw_pack::oid) -> Option<&(Kind, u64)> {
        self.legacy.as_ref()?.ids.get(id)
    }

    /// An object only the legacy table has, read from it.
    fn read_legacy(&self, id: &gitclaw_pack::oid) -> Result<Option<(Kind, Vec<u8>)>, PackError> {
        match &self.legacy {
            Some(legacy) if legacy.ids.contains_key(id) => legacy.read(&self.runtime, id),
            _ => Ok(None),
        }
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
