//! Compaction: merge every pack and loose object of a repository into at most two
//! packs — the objects reachable from the given tips, and ("cruft") the objects no
//! tip reaches, which are kept because a push may be about to reference them.
//!
//! The reachable pack holds exactly what a full clone of those tips needs, so it
//! is recorded as their closure ([`closure_key`]) and a later clone of the same
//! tips is answered by streaming it, without a walk (what reachability bitmaps do
//! for git). Objects go in walk order with their path hashes (so the delta search
//! pairs versions of one file); stored entries are reused, deltas included; only
//! objects with nothing to reuse are delta-searched. Each result is indexed and
//! verified exactly like a pushed pack.
//!
//! Not here: uploading the result or swapping it into the pack list.

use std::{io::Write, path::Path};

use gix_hash::ObjectId;
use gix_hashtable::HashSet;

use crate::{
    ingest::{ingest_file, IngestOptions, IngestedPack},
    odb::{DecodeState, ObjectDb},
    walk::{enumerate, plan_shallow, DeepenRequest, Graph, WalkObject, WalkOptions},
    writer::{write_pack, Islands, WriteOptions},
    PackError, Result,
};

/// A digest naming a set of tips (order and repeats do not matter): the key under
/// which a pack holding exactly the objects reachable from them is recorded.
pub fn closure_key(tips: &[ObjectId]) -> ObjectId {
    use sha1::Digest;
    let mut tips = tips.to_vec();
    tips.sort();
    tips.dedup();
    let mut hasher = sha1::Sha1::new();
    hasher.update(b"gitclaw closure\0");
    for id in &tips {
        hasher.update(id.as_bytes());
    }
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

/// What a compaction wrote.
#[derive(Default)]
pub struct Repacked {
    /// Everything reachable from the tips, and nothing else; `None` when no tip
    /// exists or when the one stored pack already is exactly that (see `closure_of`).
    pub reachable: Option<IngestedPack>,
    /// The objects no tip reaches, when there are any.
    pub cruft: Option<IngestedPack>,
    /// The key of the tips whose closure the reachable pack — the new one, or the
    /// single stored pack — is.
    pub closure_of: Option<ObjectId>,
    /// Those tips (the given ones the repository has).
    pub closure_tips: Vec<ObjectId>,
    /// The stored pack that already held exactly the tips' closure (nothing written).
    pub already_closed: Option<ObjectId>,
    /// The commit-graph of the reachable pack (the new one, or the one already
    /// closed), when its commits' parents are all in it.
    pub commit_graph: Option<std::path::PathBuf>,
}

/// Split every object of `db` into a reachable pack and a cruft pack under `work_dir`.
///
/// `island_tips` (the branch heads, the default one first; at most
/// [`Islands::MAX_TIPS`] are used) get a delta island each in the reachable pack:
/// every object of such a tip's tree is stored whole or as a delta against
/// another object of that tree, so a shallow clone of a branch head is copied
/// from stored entries, with no delta search (see [`Islands`]).
pub fn repack(
    db: &ObjectDb,
    tips: &[ObjectId],
    island_tips: &[ObjectId],
    work_dir: &Path,
    options: &WriteOptions,
) -> Result<Repacked> {
    let mut reachable: Vec<WalkObject> = Vec::new();
    let mut listed: HashSet<ObjectId> = HashSet::default();
    let tips: Vec<ObjectId> = tips.iter().copied().filter(|t| db.contains(t)).collect();
    let mut commit_graph = None;
    let mut islands = Islands::default();
    if !tips.is_empty() {
        let mut graph = Graph::new(db);
        islands = tip_islands(db, &mut graph, island_tips)?;
        let plan = plan_shallow(&mut graph, &tips, &DeepenRequest::default())?;
        let outcome = enumerate(&mut graph, &tips, &[], &plan, &WalkOptions::default())?;
        for obj in outcome.objects {
            listed.insert(obj.id);
            reachable.push(obj);
        }
        // Every commit the tips reach, parsed by the walk: their parents are all
        // among them, so the reachable pack gets a commit-graph.
        let mut commits = Vec::new();
        for obj in reachable
            .iter()
            .filter(|o| o.kind == gix_object::Kind::Commit)
        {
            commits.push((obj.id, graph.commit_info(&obj.id)?));
        }
        let borrowed: Vec<_> = commits.iter().map(|(id, info)| (*id, &**info)).collect();
        std::fs::create_dir_all(work_dir)
            .map_err(PackError::io("creating the repack directory"))?;
        let path = work_dir.join("reachable.graph");
        if crate::commit_graph::write(&borrowed, &path)? {
            commit_graph = Some(path);
        }
    }
    let mut cruft: Vec<WalkObject> = Vec::new();
    let mut state = DecodeState::default();
    for pack in db.packs() {
        for index in 0..pack.num_objects() {
            let id = pack.oid_at(index);
            if listed.insert(id) {
                let (kind, _) = pack.object_header(index, &mut state)?;
                cruft.push(WalkObject::new(id, kind));
            }
        }
    }
    for (id, kind) in db.loose().list() {
        if listed.insert(id) {
            cruft.push(WalkObject::new(id, kind));
        }
    }
    let closure_of = (!tips.is_empty()).then(|| closure_key(&tips));
    // One stored pack that holds the closure and nothing else needs no rewrite,
    // unless it stores an island's object as a delta against a base outside it.
    if let ([pack], true, true) = (db.packs(), cruft.is_empty(), db.loose().list().is_empty()) {
        if pack.num_objects() as usize == reachable.len() && keeps_islands(pack, &islands)? {
            return Ok(Repacked {
                closure_of,
                closure_tips: tips,
                already_closed: Some(*pack.hash()),
                commit_graph,
                ..Default::default()
            });
        }
    }
    Ok(Repacked {
        // The reachable pack in walk order, the tip's objects together.
        reachable: write_verified(
            db,
            &reachable,
            &work_dir.join("reachable"),
            &WriteOptions {
                keep_order: true,
                islands,
                ..options.clone()
            },
        )?,
        cruft: write_verified(db, &cruft, &work_dir.join("cruft"), options)?,
        closure_of,
        closure_tips: tips,
        already_closed: None,
        commit_graph,
    })
}

/// Whether every delta of `pack` whose object is in an island leans on a base
/// in all of its islands.
fn keeps_islands(pack: &crate::odb::PackHandle, islands: &Islands) -> Result<bool> {
    for (id, marks) in islands.iter() {
        let Some(index) = pack.lookup(id) else {
            continue;
        };
        if let (_, Some(base)) = pack.entry_base(index)? {
            if !Islands::allows(islands.of(&base), marks) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The delta islands of the first [`Islands::MAX_TIPS`] commits among `tips`
/// (others are skipped): every tree and blob of each one's tree, marked with its bit.
fn tip_islands(db: &ObjectDb, graph: &mut Graph<'_>, tips: &[ObjectId]) -> Result<Islands> {
    let mut marks: gix_hashtable::HashMap<ObjectId, u64> = Default::default();
    let mut commits = Vec::new();
    let mut reader = db.reader();
    for tip in tips.iter().filter(|tip| db.contains(tip)) {
        let (id, kind) = reader.peel(tip)?;
        if kind == gix_object::Kind::Commit && !commits.contains(&id) {
            commits.push(id);
        }
    }
    let tip_only = DeepenRequest {
        depth: Some(1),
        ..Default::default()
    };
    for (bit, commit) in commits.iter().take(Islands::MAX_TIPS).enumerate() {
        let plan = plan_shallow(graph, &[*commit], &tip_only)?;
        let outcome = enumerate(graph, &[*commit], &[], &plan, &WalkOptions::default())?;
        for obj in outcome.objects {
            if matches!(obj.kind, gix_object::Kind::Tree | gix_object::Kind::Blob) {
                *marks.entry(obj.id).or_default() |= 1 << bit;
            }
        }
    }
    Ok(Islands::new(marks))
}

/// Write `objects` as one self-contained pack in `dir`, then index and verify it.
fn write_verified(
    db: &ObjectDb,
    objects: &[WalkObject],
    dir: &Path,
    options: &WriteOptions,
) -> Result<Option<IngestedPack>> {
    if objects.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(PackError::io("creating the repack directory"))?;
    let merged = dir.join("merged.pack");
    {
        let file =
            std::fs::File::create(&merged).map_err(PackError::io("creating the merged pack"))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let options = WriteOptions {
            thin: false,
            ofs_delta: true,
            ..options.clone()
        };
        write_pack(db, objects, None, &options, &mut out, &mut |_, _, _| {})?;
        out.flush()
            .map_err(PackError::io("writing the merged pack"))?;
    }
    let index_dir = dir.join("indexed");
    std::fs::create_dir_all(&index_dir).map_err(PackError::io("creating the index directory"))?;
    // Objects already stored passed the checks of their day; refusing them
    // now would leave the repository uncompactable.
    let checks = IngestOptions {
        fsck: crate::fsck::FsckLevel::Off,
        ..IngestOptions::default()
    };
    let result = ingest_file(&merged, &index_dir, db, &checks);
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
