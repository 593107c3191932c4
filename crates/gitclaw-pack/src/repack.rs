//! Compaction: merge every pack and loose object of a repository into at most two
//! packs — the objects reachable from the given tips, and ("cruft") the objects no
//! tip reaches, which are kept because a push may be about to reference them.
//!
//! The reachable pack holds exactly what a full clone of those tips needs, so it
//! is recorded as their closure ([`closure_key`]) and a later clone of the same
//! tips is answered by streaming it, without a walk (what reachability bitmaps do
//! for git). Objects go with their path hashes (so the delta search pairs
//! versions of one file); stored deltas are reused, and every object stored
//! whole (or with nothing to reuse) is delta-searched, as `git repack -a` does;
//! the layout and the deflate level are the writer's (see
//! [`WriteOptions::keep_order`](crate::writer::WriteOptions)). Each result is
//! indexed and verified exactly like a pushed pack. The reachable pack gets a commit-graph,
//! and in it the tip entries of the branch heads (see [`crate::tip_entries`]).
//!
//! Not here: uploading the result or swapping it into the pack list.

use std::{io::Write, path::Path};

use gix_hash::ObjectId;
use gix_hashtable::HashSet;

use crate::{
    id_table::IdTable,
    ingest::{ingest_file, IngestOptions, IngestedPack},
    odb::{DecodeState, NoLoose, ObjectDb, PackHandle},
    tip_entries::TipEntry,
    walk::{enumerate, plan_shallow, DeepenRequest, Graph, WalkObject, WalkOptions},
    writer::{write_pack, WriteOptions},
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
    /// closed), when its commits' parents are all in it, with the pack's tip
    /// entries.
    pub commit_graph: Option<std::path::PathBuf>,
    /// How many tip entries the commit-graph holds.
    pub tip_entries: usize,
}

/// The most bytes of [tip entries](crate::tip_entries) a compaction stores.
pub const TIP_ENTRY_BYTES: u64 = 16 << 20;

/// Split every object of `db` into a reachable pack and a cruft pack under `work_dir`.
///
/// `shallow_tips` (branch heads, the one most cloned first) get [tip
/// entries](crate::tip_entries) in the reachable pack's commit-graph, as many
/// as [`TIP_ENTRY_BYTES`] holds: a `--depth 1` clone of such a head then copies
/// stored bytes only, with no delta search, however the pack stores the
/// versions of its files.
pub fn repack(
    db: &ObjectDb,
    tips: &[ObjectId],
    shallow_tips: &[ObjectId],
    work_dir: &Path,
    options: &WriteOptions,
) -> Result<Repacked> {
    let mut reachable: Vec<WalkObject> = Vec::new();
    let loose = db.loose().list();
    // Objects stored, in every pack and loose (one stored twice counts twice).
    let stored: usize = db
        .packs()
        .iter()
        .map(|p| p.num_objects() as usize)
        .sum::<usize>()
        + loose.len();
    let mut present = Vec::with_capacity(tips.len());
    for tip in tips {
        if db.contains(tip)? {
            present.push(*tip);
        }
    }
    let tips = present;
    let mut commits = Vec::new();
    let mut tip_trees = Vec::new();
    if !tips.is_empty() {
        let mut graph = Graph::new(db);
        tip_trees = tip_objects(db, &mut graph, shallow_tips)?;
        let plan = plan_shallow(&mut graph, &tips, &DeepenRequest::default())?;
        // The list made as large as the repository at once, not grown by
        // doubling (up to twice what it holds).
        let walk = WalkOptions {
            expected_objects: stored,
            ..WalkOptions::default()
        };
        let outcome = enumerate(&mut graph, &tips, &[], &plan, &walk)?;
        // The walk's list itself, not a copy beside it.
        reachable = outcome.objects;
        // Every commit the tips reach, parsed by the walk: their parents are all
        // among them, so the reachable pack gets a commit-graph.
        for obj in reachable
            .iter()
            .filter(|o| o.kind == gix_object::Kind::Commit)
        {
            commits.push((obj.id, graph.commit_info(&obj.id)?));
        }
    }
    // One stored pack of as many objects as the walk listed (each once, all
    // from that pack), nothing loose: it holds the closure and nothing else,
    // and needs no rewrite — the record of a history pushed whole.
    let closed = match db.packs() {
        [pack] if loose.is_empty() && pack.num_objects() as usize == reachable.len() => {
            Some(pack.clone())
        }
        _ => None,
    };
    // What no tip reaches; nothing, without looking, in a closed pack. The
    // ids seen are numbers into `reachable` and `cruft` (the top bit marks
    // the latter's) in an `IdTable`: a set of the ids themselves held 35 bytes
    // an object, 88 MB for a moment at 2.5M objects, the compaction's peak.
    let mut cruft: Vec<WalkObject> = Vec::new();
    if closed.is_none() {
        const CRUFT: u32 = 1 << 31;
        if reachable.len() >= CRUFT as usize || stored >= CRUFT as usize {
            return Err(PackError::InvalidPack(
                "too many objects for one compaction".into(),
            ));
        }
        let mut listed = IdTable::with_capacity(stored);
        fn id_of<'a>(
            reachable: &'a [WalkObject],
            cruft: &'a [WalkObject],
            n: u32,
        ) -> Option<&'a gix_hash::oid> {
            let (list, at) = match n & CRUFT {
                0 => (reachable, n),
                _ => (cruft, n & !CRUFT),
            };
            list.get(at as usize).map(|o| o.id.as_ref())
        }
        for (number, obj) in (0u32..).zip(&reachable) {
            listed.insert(&obj.id, number, |n| id_of(&reachable, &[], n));
        }
        let mut state = DecodeState::with_cache_bytes(db.delta_cache_bytes());
        // A type is read (a delta's, down its chain) only for what is new.
        let mut add = |id: ObjectId, kind: &mut dyn FnMut() -> Result<gix_object::Kind>| {
            if listed.find(&id, |n| id_of(&reachable, &cruft, n)).is_none() {
                let number = CRUFT | cruft.len() as u32;
                cruft.push(WalkObject::new(id, kind()?));
                listed.insert(&id, number, |n| id_of(&reachable, &cruft, n));
            }
            Ok::<_, PackError>(())
        };
        for pack in db.packs() {
            for index in 0..pack.num_objects() {
                let mut kind = || Ok(pack.object_header(index, &mut state)?.0);
                add(pack.oid_at(index)?, &mut kind)?;
            }
        }
        for &(id, kind) in &loose {
            add(id, &mut || Ok(kind))?;
        }
    }
    let closure_of = (!tips.is_empty()).then(|| closure_key(&tips));
    let mut repacked = Repacked {
        closure_of,
        closure_tips: tips.clone(),
        ..Default::default()
    };
    let closure = match closed {
        Some(pack) => {
            repacked.already_closed = Some(*pack.hash());
            Some(db.clone())
        }
        None => {
            // Commits, the tip's trees, the tip's blobs, the trees its recent
            // history brought, the other trees, the other blobs (see
            // `WriteOptions::keep_order`): what a shallow clone of the tip
            // sends lies together, and what a fetch of a few commits reads of
            // trees in two runs at most.
            let mut lead_tip = None;
            for tip in shallow_tips.iter().chain(&tips) {
                if db.contains(tip)? {
                    lead_tip = Some(*tip);
                    break;
                }
            }
            let lead_tree: HashSet<ObjectId> = match tip_trees.first() {
                Some(tree) => tree.iter().map(|o| o.id).collect(),
                None => tip_objects(db, &mut Graph::new(db), lead_tip.as_slice())?
                    .first()
                    .map(|tree| tree.iter().map(|o| o.id).collect())
                    .unwrap_or_default(),
            };
            let recent = recent_trees(db, lead_tip, &lead_tree)?;
            let rank = |o: &WalkObject| match o.kind {
                gix_object::Kind::Commit | gix_object::Kind::Tag => 0,
                gix_object::Kind::Tree if lead_tree.contains(&o.id) => 1,
                gix_object::Kind::Blob if lead_tree.contains(&o.id) => 2,
                gix_object::Kind::Tree if recent.contains(&o.id) => 3,
                gix_object::Kind::Tree => 4,
                gix_object::Kind::Blob => 5,
            };
            // A stable sort: each part keeps the walk's order — but for the
            // recent trees, which go by path (their name hash), each path's
            // versions newest first: one version's delta against the next then
            // lies right after it (one-byte offsets), and all of them together.
            reachable.sort_by_key(|o| {
                let rank = rank(o);
                (rank, if rank == 3 { o.name_hash } else { 0 })
            });
            let lead = reachable.iter().take_while(|o| rank(o) <= 3).count();
            repacked.reachable = write_verified(
                db,
                std::mem::take(&mut reachable),
                &work_dir.join("reachable"),
                &WriteOptions {
                    keep_order: true,
                    lead,
                    recompress: true,
                    search_whole: true,
                    compression: 9,
                    ..options.clone()
                },
            )?;
            let cruft = std::mem::take(&mut cruft);
            repacked.cruft = write_verified(db, cruft, &work_dir.join("cruft"), options)?;
            match &repacked.reachable {
                Some(pack) => {
                    let handle = std::sync::Arc::new(PackHandle::open(&pack.index_path)?);
                    Some(
                        ObjectDb::new(vec![handle], std::sync::Arc::new(NoLoose))
                            .with_delta_cache_bytes(db.delta_cache_bytes()),
                    )
                }
                None => None,
            }
        }
    };
    // Written: the lists of what went where (some 60 bytes an object) are not
    // held beside the tip entries and the graph's tables.
    drop((reachable, cruft, loose));
    if let Some(closure) = closure {
        let borrowed: Vec<_> = commits.iter().map(|(id, info)| (*id, &**info)).collect();
        std::fs::create_dir_all(work_dir)
            .map_err(PackError::io("creating the repack directory"))?;
        let path = work_dir.join("reachable.graph");
        // From the pack's entry headers. A stored pack that already was the
        // closure, read by ranges, comes down whole for them: once, here in the
        // background, rather than on each fresh instance's first partial clone.
        // Where each entry's delta base lies, likewise: a fresh instance then
        // reads a chain in one batch instead of an entry at a time. And which
        // commit brought each object: a fetch then knows what the client's
        // older history holds (see `walk::history`). And the pack order, which
        // opening the pack then takes instead of sorting its offsets.
        let (kinds, delta_bases, introduced_by, places, order) = match closure.packs() {
            [pack] => {
                let lead = shallow_tips
                    .iter()
                    .find(|tip| borrowed.iter().any(|(id, _)| id == *tip))
                    .copied();
                (
                    pack.kinds_in_pack_order()?.iter().collect(),
                    pack.delta_bases_in_pack_order()?,
                    crate::walk::introducing_commits(&closure, pack, &borrowed, lead)?,
                    (0..pack.num_objects())
                        .map(|index| Ok(pack.position_of(index)? as u32))
                        .collect::<Result<_>>()?,
                    pack.order_keys().map(|keys| (*pack.hash(), keys)),
                )
            }
            _ => (Vec::new(), Vec::new(), Vec::new(), Vec::new(), None),
        };
        // The tip entries after the tables: the walk above (its delta
        // bases) and the entries (up to TIP_ENTRY_BYTES) are not held at once.
        let mut entries: Vec<TipEntry> = Vec::new();
        let mut have: HashSet<ObjectId> = HashSet::default();
        let mut budget = TIP_ENTRY_BYTES;
        for objects in &tip_trees {
            if budget == 0 {
                break;
            }
            let found = crate::writer::tip_entries(&closure, objects, options, budget)?;
            for mut entry in found {
                if !have.insert(entry.id) {
                    continue;
                }
                budget = budget.saturating_sub(
                    entry.compressed.len() as u64 + crate::tip_entries::TABLE_BYTES,
                );
                // Kept until the graph is written: without the room deflating
                // left (up to half the object again), the entries held
                // weighed twice their bytes.
                entry.compressed.shrink_to_fit();
                entries.push(entry);
            }
        }
        let recorded = crate::commit_graph::PackEntries {
            kinds: &kinds,
            delta_bases: &delta_bases,
            introduced_by: &introduced_by,
            places: &places,
            order: order.as_ref().map(|(pack, keys)| (*pack, &keys[..])),
        };
        if crate::commit_graph::write(&borrowed, &entries, &recorded, &path)? {
            repacked.commit_graph = Some(path);
            repacked.tip_entries = entries.len();
        }
    }
    Ok(repacked)
}

/// How many commits of the lead tip's history [`recent_trees`] covers: a fetch
/// of up to about this many commits of the default branch reads, of the
/// client's side, only trees that lie together right after the lead.
const RECENT_COMMITS: u32 = 64;

/// The trees that the commits of `tip`'s last [`RECENT_COMMITS`] generations
/// hold and the tip's own tree (`lead`) does not: the older versions of the
/// directories those commits changed — what a fetch of a few commits reads of
/// what the client has (see `walk::edge`). None without a tip commit.
fn recent_trees(
    db: &ObjectDb,
    tip: Option<ObjectId>,
    lead: &HashSet<ObjectId>,
) -> Result<HashSet<ObjectId>> {
    let Some(tip) = tip else {
        return Ok(HashSet::default());
    };
    let (tip, kind) = db.reader().peel(&tip)?;
    if kind != gix_object::Kind::Commit {
        return Ok(HashSet::default());
    }
    let recent = DeepenRequest {
        depth: Some(RECENT_COMMITS + 1),
        ..Default::default()
    };
    let mut graph = Graph::new(db);
    let plan = plan_shallow(&mut graph, &[tip], &recent)?;
    let outcome = enumerate(&mut graph, &[tip], &[], &plan, &WalkOptions::default())?;
    Ok(outcome
        .objects
        .into_iter()
        .filter(|o| o.kind == gix_object::Kind::Tree && !lead.contains(&o.id))
        .map(|o| o.id)
        .collect())
}

/// The trees and blobs of the first [`MAX_SHALLOW_TIPS`] commits `tips` peel
/// to, tip by tip: what a `--depth 1` clone of each sends besides its commit.
fn tip_objects(
    db: &ObjectDb,
    graph: &mut Graph<'_>,
    tips: &[ObjectId],
) -> Result<Vec<Vec<WalkObject>>> {
    let mut commits = Vec::new();
    let mut reader = db.reader();
    for tip in tips {
        if !db.contains(tip)? {
            continue;
        }
        let (id, kind) = reader.peel(tip)?;
        if kind == gix_object::Kind::Commit && !commits.contains(&id) {
            commits.push(id);
        }
    }
    let tip_only = DeepenRequest {
        depth: Some(1),
        ..Default::default()
    };
    let mut trees = Vec::new();
    for commit in commits.iter().take(MAX_SHALLOW_TIPS) {
        let plan = plan_shallow(graph, &[*commit], &tip_only)?;
        let outcome = enumerate(graph, &[*commit], &[], &plan, &WalkOptions::default())?;
        trees.push(
            outcome
                .objects
                .into_iter()
                .filter(|o| matches!(o.kind, gix_object::Kind::Tree | gix_object::Kind::Blob))
                .collect(),
        );
    }
    Ok(trees)
}

/// The most branch heads compaction works out tip entries for.
pub const MAX_SHALLOW_TIPS: usize = 64;

/// Write `objects` as one self-contained pack in `dir`, then index and verify it.
fn write_verified(
    db: &ObjectDb,
    objects: Vec<WalkObject>,
    dir: &Path,
    options: &WriteOptions,
) -> Result<Option<IngestedPack>> {
    if objects.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(PackError::io("creating the repack directory"))?;
    let merged = dir.join("merged.pack");
    let largest_whole = {
        let file =
            std::fs::File::create(&merged).map_err(PackError::io("creating the merged pack"))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let options = WriteOptions {
            thin: false,
            ofs_delta: true,
            ..options.clone()
        };
        let stats = write_pack(db, &objects, None, &options, &mut out, &mut |_, _, _| {})?;
        out.flush()
            .map_err(PackError::io("writing the merged pack"))?;
        stats.largest_whole
    };
    // Written: the list (some 28 bytes an object) is not held beside the
    // indexer's tables.
    let expected = objects.len();
    drop(objects);
    let index_dir = dir.join("indexed");
    std::fs::create_dir_all(&index_dir).map_err(PackError::io("creating the index directory"))?;
    // Objects already stored passed the checks of their day (and the size
    // limit of their day); refusing them now would leave the repository
    // uncompactable. All are the repository's: only their count is wanted.
    let checks = IngestOptions {
        max_object_bytes: usize::MAX,
        fsck: crate::fsck::FsckLevel::Off,
        list_objects: false,
        largest_whole,
        ..IngestOptions::default()
    };
    let result = ingest_file(&merged, &index_dir, db, &checks);
    let _ = std::fs::remove_file(&merged);
    let pack = result?;
    if let Some(pack) = &pack {
        if pack.object_count() != expected {
            return Err(PackError::Corrupt(format!(
                "merged pack holds {} objects, expected {expected}",
                pack.object_count(),
            )));
        }
    }
    Ok(pack)
}
