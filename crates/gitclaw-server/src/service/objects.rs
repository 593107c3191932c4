//! One repository's objects as the pack engine sees them.
//!
//! [`object_db`] turns the metadata's pack list and loose-object index into a
//! pack-engine [`ObjectDb`] without listing the store: the hot path never does a
//! LIST or HEAD. Packs come through the shared [`PackCache`](super::pack_cache);
//! loose objects are read from the store when the engine asks for them.

use std::{path::PathBuf, sync::Arc};

use gitclaw_metadata::Repo;
use gitclaw_pack::odb::{LooseSource, ObjectDb};
use gitclaw_pack::{Kind, ObjectId, PackError};
use gitclaw_storage::{ObjectKey, ObjectStorageBackend, RepoId};
use gix_hashtable::HashMap;

use crate::{app::AppState, error::GitError, metrics::StoreRequests};

/// The pack-engine view of a repository's objects, from the metadata's lists.
pub async fn object_db(state: &AppState, repo: &Repo) -> Result<ObjectDb, GitError> {
    let repo_id = RepoId::new(&repo.id)?;
    let packs = state.meta.list_packs(&repo.id).await?;
    let mut handles = Vec::with_capacity(packs.len());
    for pack in &packs {
        handles.push(
            state
                .packs
                .open(&state.store, &repo_id, &pack.pack_hash)
                .await?,
        );
    }
    let loose = state.meta.list_loose(&repo.id).await?;
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
    Ok(if state.config.object_cache_bytes > 0 {
        db.with_cache(state.objects.clone())
    } else {
        db
    })
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
    /// The git request the reads are for: the pack engine reads from threads
    /// of its own, so its store requests are counted for that request here.
    requests: Option<StoreRequests>,
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
                        .block_on(self.store.get_to_file(&key, download.path()))
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

/// Turns a loose reader's errors into ones that name the object as corrupted.
struct StreamErrors<R: std::io::Read>(gitclaw_storage::LooseObjectReader<R>);

impl<R: std::io::Read> std::io::Read for StreamErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|err| std::io::Error::other(self.0.error(err).to_string()))
    }
}
