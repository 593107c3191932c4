//! Storing a push's new objects before any ref can name them: the received
//! pack and its index when it brings more than [`LOOSE_THRESHOLD`] new objects,
//! otherwise each new object as a loose object (written to a file, streamed,
//! then uploaded, so a big one is never held whole).

use std::path::Path;

use gitclaw_metadata::{NewLoose, NewPack};
use gitclaw_pack::{ingest::IngestedPack, odb::DecodeState, Kind, ObjectId};
use gitclaw_storage::{ObjectKey, PutOptions, RepoId};

use crate::{app::AppState, error::GitError};

/// More new objects than this go into the store as one pack; fewer as loose objects.
pub const LOOSE_THRESHOLD: usize = 10;

/// What a push stored, for the metadata transaction and the audit event.
pub struct Stored {
    pub pack: Option<NewPack>,
    pub loose: Vec<NewLoose>,
    pub details: serde_json::Value,
}

/// Upload the new objects of `pack` (their keys already claimed).
pub async fn store_objects(
    state: &AppState,
    repo_id: &RepoId,
    pack: &IngestedPack,
    work: &Path,
) -> Result<Stored, GitError> {
    let io = GitError::io;
    // Counted, not copied: a copy of a whole history's list was 100 MB at
    // 2.5M objects, the push's peak.
    let new_count = pack.new_objects().count();
    if new_count > LOOSE_THRESHOLD {
        let pack_key = ObjectKey::pack(repo_id, pack.pack.hash());
        let index_key = ObjectKey::pack_index(repo_id, pack.pack.hash());
        state
            .store
            .put_file(&pack_key, &pack.pack_path, &PutOptions::pack())
            .await?;
        gitclaw_metadata::crash_point("push:pack-uploaded");
        state
            .store
            .put_file(&index_key, &pack.index_path, &PutOptions::pack_index())
            .await?;
        gitclaw_metadata::crash_point("push:index-uploaded");
        let size = file_size(&pack.pack_path)
            .await
            .map_err(io("sizing the pack"))?;
        let index_size = file_size(&pack.index_path)
            .await
            .map_err(io("sizing the pack index"))?;
        let details = serde_json::json!({
            "objects": new_count, "bytes": size, "storage": "pack", "pack": pack.pack.hash().to_string(),
        });
        return Ok(Stored {
            pack: Some(NewPack {
                pack_hash: *pack.pack.hash(),
                object_count: u64::from(pack.pack.num_objects()),
                pack_bytes: size,
                index_bytes: index_size,
                graph_bytes: None,
            }),
            loose: Vec::new(),
            details,
        });
    }
    let mut loose = Vec::new();
    let mut bytes = 0u64;
    if new_count > 0 {
        let (index_path, ids, dir) = (
            pack.index_path.clone(),
            pack.new_objects().map(|o| o.id).collect::<Vec<_>>(),
            work.join("loose"),
        );
        let objects =
            tokio::task::spawn_blocking(move || write_loose_files(&index_path, &ids, &dir))
                .await??;
        for object in objects {
            gitclaw_storage::put_loose_file(
                &*state.store,
                repo_id,
                &object.id,
                object.kind,
                object.size,
                &object.path,
            )
            .await?;
            // Some of the push's loose objects stored, the rest not yet.
            gitclaw_metadata::crash_point("push:loose-uploaded");
            let _ = tokio::fs::remove_file(&object.path).await;
            bytes += object.size;
            loose.push(NewLoose {
                oid: object.id,
                kind: object.kind.to_string(),
                size: object.size,
            });
        }
    }
    let details = if loose.is_empty() {
        serde_json::json!({ "objects": 0, "bytes": 0, "storage": "none" })
    } else {
        serde_json::json!({ "objects": loose.len(), "bytes": bytes, "storage": "loose" })
    };
    Ok(Stored {
        pack: None,
        loose,
        details,
    })
}

async fn file_size(path: &Path) -> std::io::Result<u64> {
    Ok(tokio::fs::metadata(path).await?.len())
}

/// The keys [`store_objects`] writes for a pack: the pack and its index when
/// it brings more than [`LOOSE_THRESHOLD`] new objects, else each new object.
pub fn keys_to_store(repo: &RepoId, pack: &IngestedPack) -> Vec<ObjectKey> {
    if pack.new_objects().count() > LOOSE_THRESHOLD {
        vec![
            ObjectKey::pack(repo, pack.pack.hash()),
            ObjectKey::pack_index(repo, pack.pack.hash()),
        ]
    } else {
        pack.new_objects()
            .map(|o| ObjectKey::loose(repo, &o.id))
            .collect()
    }
}

/// A new object of the push, written in the loose format to a local file.
struct LooseFile {
    id: ObjectId,
    kind: Kind,
    size: u64,
    path: std::path::PathBuf,
}

/// Write each object of the received pack named in `ids` as a loose file in `dir`.
/// Objects stored whole in the pack are inflated from it and deflated into the
/// file as they stream; deltas are resolved in memory (within the ingest's object
/// size limit), as git does. Each file's content must hash to its id.
fn write_loose_files(
    index_path: &Path,
    ids: &[ObjectId],
    dir: &Path,
) -> Result<Vec<LooseFile>, GitError> {
    std::fs::create_dir_all(dir).map_err(GitError::io("making room for loose objects"))?;
    let pack = gitclaw_pack::odb::PackHandle::open(index_path)?;
    let mut state = DecodeState::default();
    let mut out = Vec::with_capacity(ids.len());
    let mut buf = Vec::new();
    for id in ids {
        let index = pack.lookup(id)?.ok_or_else(|| {
            GitError::Internal(format!("object {id} vanished from the received pack"))
        })?;
        let path = dir.join(id.to_string());
        let (kind, size, written) = match pack.stream_whole(index)? {
            Some((kind, size, mut content)) => {
                let written = gitclaw_storage::write_loose_file(kind, size, &mut content, &path)?;
                (kind, size, written)
            }
            None => {
                let kind = pack.decode(index, &mut buf, &mut state)?;
                let size = buf.len() as u64;
                let written =
                    gitclaw_storage::write_loose_file(kind, size, &mut buf.as_slice(), &path)?;
                (kind, size, written)
            }
        };
        if written != *id {
            return Err(GitError::Internal(format!(
                "object {id} hashed to {written} when stored"
            )));
        }
        out.push(LooseFile {
            id: *id,
            kind,
            size,
            path,
        });
    }
    Ok(out)
}
