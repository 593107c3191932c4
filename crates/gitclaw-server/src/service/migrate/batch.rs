//! One batch of legacy rows into the store: read each row right (its SHA-1
//! decides), write the good ones as one pack of whole objects with its index,
//! upload it as a push would (pack + idx for
//! more than ten objects, loose objects otherwise, keys claimed until
//! recorded), and record the stored objects and every row's outcome in one
//! transaction. Until that transaction the batch has left no trace but keys
//! a claim holds, which are deleted (or swept once the claim lapses) if the
//! batch dies: redoing it copies nothing twice.

use gitclaw_metadata::{LegacyRow, MigrationBatch, RowOutcome};
use gitclaw_pack::{ingest::IngestedPack, writer::WholeObject, Kind, ObjectId};
use gitclaw_storage::RepoId;

use super::decode::decode;
use crate::{
    app::AppState,
    error::GitError,
    service::{claims::StoreClaim, push::store},
};

/// What one batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchReport {
    pub rows: u64,
    pub copied: u64,
    pub bytes: u64,
    pub corrupt: u64,
}

/// The largest object a row may inflate to.
const MAX_OBJECT_BYTES: u64 = 4 << 30;

/// Copy `rows` of repository `repo_id` into the store and record them.
pub async fn copy_batch(
    state: &AppState,
    repo_id: &str,
    rows: Vec<LegacyRow>,
) -> Result<BatchReport, GitError> {
    let store_id = RepoId::new(repo_id)?;
    let work = tempfile::Builder::new()
        .prefix("migrate-")
        .tempdir_in(&state.scratch.dir)
        .map_err(GitError::io("creating a work directory"))?;
    let dir = work.path().to_path_buf();
    let mut report = BatchReport {
        rows: rows.len() as u64,
        ..Default::default()
    };
    let (outcomes, ingested) =
        crate::metrics::spawn_blocking(move || pack_rows(rows, &dir)).await??;
    let mut batch = MigrationBatch {
        repo_id: repo_id.to_string(),
        pack: None,
        loose: Vec::new(),
        rows: Vec::with_capacity(outcomes.len()),
    };
    let mut claim = None;
    if let Some(pack) = &ingested {
        let keys = store::keys_to_store(&store_id, pack);
        claim = Some(StoreClaim::upload(state, repo_id, keys).await?);
        let stored = store::store_objects(state, &store_id, pack, work.path()).await?;
        batch.pack = stored.pack;
        batch.loose = stored.loose;
    }
    for (oid, outcome) in outcomes {
        match &outcome {
            RowOutcome::Copied { bytes } => {
                report.copied += 1;
                report.bytes += bytes;
            }
            RowOutcome::Corrupt { detail } => {
                report.corrupt += 1;
                tracing::warn!(repo = %repo_id, %oid, problem = %detail, "corrupt legacy row: not copied");
            }
        }
        batch.rows.push((oid, outcome));
    }
    state.meta.record_migration_batch(&batch).await?;
    if let Some(claim) = claim {
        claim.release().await;
    }
    Ok(report)
}

/// Each row's outcome, and the verified pack of the good ones (if any).
type Packed = (Vec<(ObjectId, RowOutcome)>, Option<IngestedPack>);

/// Decode every row and write the good ones as one verified pack under
/// `dir`: each row's outcome, and the pack (none when no row was good).
fn pack_rows(rows: Vec<LegacyRow>, dir: &std::path::Path) -> Result<Packed, GitError> {
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut objects: Vec<(ObjectId, Kind, Vec<u8>)> = Vec::with_capacity(rows.len());
    for row in rows {
        let oid = row.oid;
        match decode(row, MAX_OBJECT_BYTES) {
            Ok(decoded) => {
                outcomes.push((
                    oid,
                    RowOutcome::Copied {
                        bytes: decoded.content.len() as u64,
                    },
                ));
                objects.push((oid, decoded.kind, decoded.content));
            }
            Err(detail) => outcomes.push((oid, RowOutcome::Corrupt { detail })),
        }
    }
    if objects.is_empty() {
        return Ok((outcomes, None));
    }
    let whole: Vec<WholeObject<'_>> = objects
        .iter()
        .map(|(id, kind, content)| WholeObject {
            id: *id,
            kind: *kind,
            content,
        })
        .collect();
    // Each id is the SHA-1 `decode` found the content to have: the index is
    // written from them as the pack is, without reading it back.
    let ingested = gitclaw_pack::writer::write_whole_pack(&whole, 1, dir)?;
    Ok((outcomes, Some(ingested)))
}
