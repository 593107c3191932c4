//! Compaction: merge every pack and loose object of a repository into one pack.
//!
//! Objects reachable from the given tips go first, in walk order and with their
//! path hashes (so the delta search pairs versions of one file); objects no tip
//! reaches are kept too — a push may be about to reference them. Stored entries are
//! reused, deltas included; only objects with nothing to reuse are delta-searched.
//! The result is indexed and verified exactly like a pushed pack.
//!
//! Not here: uploading the result or swapping it into the pack list.

use std::{io::Write, path::Path};

use gix_hash::ObjectId;
use gix_hashtable::HashSet;

use crate::{
    ingest::{ingest, IngestOptions, IngestedPack},
    odb::{DecodeState, ObjectDb},
    walk::{enumerate, plan_shallow, DeepenRequest, Graph, WalkObject, WalkOptions},
    writer::{write_pack, WriteOptions},
    PackError, Result,
};

/// Write every object of `db` into one new pack under `work_dir`.
/// Returns `None` when the repository has no objects.
pub fn repack(
    db: &ObjectDb,
    tips: &[ObjectId],
    work_dir: &Path,
    options: &WriteOptions,
) -> Result<Option<IngestedPack>> {
    let mut objects: Vec<WalkObject> = Vec::new();
    let mut listed: HashSet<ObjectId> = HashSet::default();
    let tips: Vec<ObjectId> = tips.iter().copied().filter(|t| db.contains(t)).collect();
    if !tips.is_empty() {
        let mut graph = Graph::new(db);
        let plan = plan_shallow(&mut graph, &tips, &DeepenRequest::default())?;
        let outcome = enumerate(&mut graph, &tips, &[], &plan, &WalkOptions::default())?;
        for obj in outcome.objects {
            listed.insert(obj.id);
            objects.push(obj);
        }
    }
    let mut state = DecodeState::default();
    for pack in db.packs() {
        for index in 0..pack.num_objects() {
            let id = pack.oid_at(index);
            if listed.insert(id) {
                let (kind, _) = pack.object_header(index, &mut state)?;
                objects.push(WalkObject::new(id, kind));
            }
        }
    }
    for (id, kind) in db.loose().list() {
        if listed.insert(id) {
            objects.push(WalkObject::new(id, kind));
        }
    }
    if objects.is_empty() {
        return Ok(None);
    }

    let merged = work_dir.join("merged.pack");
    {
        let file =
            std::fs::File::create(&merged).map_err(PackError::io("creating the merged pack"))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let options = WriteOptions {
            thin: false,
            ofs_delta: true,
            ..options.clone()
        };
        write_pack(db, &objects, None, &options, &mut out, &mut |_, _| {})?;
        out.flush()
            .map_err(PackError::io("writing the merged pack"))?;
    }
    let index_dir = work_dir.join("indexed");
    std::fs::create_dir_all(&index_dir).map_err(PackError::io("creating the index directory"))?;
    let file = std::fs::File::open(&merged).map_err(PackError::io("reading the merged pack"))?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let result = ingest(&mut input, &index_dir, db, &IngestOptions::default());
    let _ = std::fs::remove_file(&merged);
    let pack = result?;
    if let Some(pack) = &pack {
        if pack.objects.len() != objects.len() {
            return Err(PackError::Corrupt(format!(
                "merged pack holds {} objects, expected {}",
                pack.objects.len(),
                objects.len()
            )));
        }
    }
    Ok(pack)
}
