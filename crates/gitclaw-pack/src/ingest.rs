//! Ingest of a pushed pack: index it, complete it when thin, verify every object.
//!
//! The pack arrives as a local spool file (the caller caps its size). It is
//! written into a `.pack` + `.idx` pair in a work directory, the bases of a
//! thin pack appended from the repository's objects, and every object is
//! hashed (ids are computed, never taken from the client), parsed as its type
//! says and checked by git's fsck checks at the chosen [`FsckLevel`] — in one
//! traversal of the pack's deltas (`resolve.rs`). Every object it references
//! must be in the pack or already in the repository. Because every stored
//! object passed this check when it was stored, the closure of every stored
//! object is stored too: a ref may then point at any object of the repository
//! without a deep connectivity walk.
//!
//! Not here: deciding pack-versus-loose storage or uploading (the caller's job).

use std::{
    cell::RefCell,
    io::BufRead,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
};

use gix_hash::{oid, ObjectId};
use gix_object::{Kind, ObjectRef};

use crate::{
    fsck::{self, FsckLevel},
    odb::{DecodeState, ObjectDb, ObjectReader, PackHandle},
    stream_index::{look_through, Found},
    PackError, Result,
};

/// Limits that keep ingest bounded whatever the client sends.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The largest object (whole, or a delta's result) a pack may hold: a
    /// bigger one is refused with [`PackError::ObjectTooLarge`] by its size,
    /// before it is inflated. Objects stored whole above
    /// [`crate::BIG_OBJECT_BYTES`] are streamed, never held; a delta's base
    /// and result are held while it is resolved, so this bounds them.
    pub max_object_bytes: usize,
    /// Threads used to resolve deltas.
    pub threads: usize,
    /// Which of git's fsck checks every object must pass.
    pub fsck: FsckLevel,
    /// List every object of the pack ([`IngestedPack::objects`]), asking the
    /// repository which it had already. A compaction, whose objects are all
    /// the repository's and which needs only their count, does not: the list
    /// is 32 bytes an object (80 MB at 2.5M objects) and the asking a lookup
    /// an object in every stored pack.
    pub list_objects: bool,
    /// Objects stored whole above this many bytes are streamed, never held
    /// ([`crate::BIG_OBJECT_BYTES`]; tests and fuzzing lower it, so that small
    /// packs take every path a big one does).
    pub big_object_bytes: u64,
    /// The largest object the pack holds whole (inflated), when the caller
    /// wrote the pack and knows it. A pack of none above
    /// [`crate::BIG_OBJECT_BYTES`] then goes to the indexer straight away: a
    /// pack of unknown make is first read through once to learn whether it
    /// holds a big one (every entry inflated: 2.7 s of a compaction at 2.5M
    /// objects).
    pub largest_whole: Option<u64>,
    /// Objects of the pack that a REF_DELTA of it may name as its base,
    /// sorted: completing the pack as thin does not look them up in the
    /// repository (which would add a second copy when it holds them too).
    /// [`ingest_file`] fills it in when a first attempt made such copies.
    pub bases_in_pack: Vec<ObjectId>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_object_bytes: 1 << 30,
            threads: 2,
            fsck: FsckLevel::default(),
            list_objects: true,
            big_object_bytes: crate::BIG_OBJECT_BYTES,
            largest_whole: None,
            bases_in_pack: Vec::new(),
        }
    }
}

/// One object of an ingested pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedObject {
    pub id: ObjectId,
    pub kind: Kind,
    pub size: u64,
    /// True when the repository had this object before the push (a thin-pack base
    /// or an object the client sent again).
    pub already_stored: bool,
}

/// A verified pack on local disk.
pub struct IngestedPack {
    pub pack: PackHandle,
    pub pack_path: PathBuf,
    pub index_path: PathBuf,
    /// Every object of the pack, when [`IngestOptions::list_objects`] asked
    /// for them (else none).
    pub objects: Vec<IngestedObject>,
    /// When every object the pack's objects name is in the pack itself (it is
    /// closed under reachability): the objects no other object of the pack
    /// names. Git's object graph has no cycles, so every object of the pack is
    /// reachable from these, and the pack holds exactly their closure. `None`
    /// when some object names one outside the pack.
    pub roots: Option<Vec<ObjectId>>,
}

impl IngestedPack {
    /// Objects the repository did not have before.
    pub fn new_objects(&self) -> impl Iterator<Item = &IngestedObject> {
        self.objects.iter().filter(|o| !o.already_stored)
    }

    /// How many objects the pack holds (listed or not).
    pub fn object_count(&self) -> usize {
        self.pack.num_objects() as usize
    }

    /// Every object id the pack holds, in its index's order (listed or not).
    pub fn ids(&self) -> Result<Vec<ObjectId>> {
        (0..self.pack.num_objects())
            .map(|index| self.pack.oid_at(index))
            .collect()
    }

    pub fn contains(&self, id: &oid) -> Result<bool> {
        Ok(self.pack.lookup(id)?.is_some())
    }
}

/// Bridges the repository's objects to gix-pack's thin-pack base lookup.
pub(crate) struct BaseLookup<'a> {
    reader: RefCell<ObjectReader<'a>>,
    /// Ids not looked up: the pack's own (sorted).
    in_pack: &'a [ObjectId],
}

impl<'a> BaseLookup<'a> {
    pub(crate) fn new(db: &'a ObjectDb, options: &'a IngestOptions) -> Self {
        BaseLookup {
            reader: RefCell::new(db.reader_with_cache_bytes(VERIFY_CACHE_BYTES)),
            in_pack: &options.bases_in_pack,
        }
    }
}

impl gix_object::Find for BaseLookup<'_> {
    fn try_find<'b>(
        &self,
        id: &oid,
        buffer: &'b mut Vec<u8>,
    ) -> gix_error::Result<Option<gix_object::Data<'b>>> {
        if self
            .in_pack
            .binary_search_by(|x| x.as_ref().cmp(id))
            .is_ok()
        {
            return Ok(None);
        }
        let mut reader = self.reader.borrow_mut();
        match reader.read(id, buffer) {
            Ok(Some(kind)) => Ok(Some(gix_object::Data::new(
                buffer,
                kind,
                gix_hash::Kind::Sha1,
            ))),
            Ok(None) => Ok(None),
            Err(err) => Err(gix_error::Error::from_error(std::io::Error::other(
                err.to_string(),
            ))),
        }
    }
}

/// Index, complete and verify the pack in the file at `path` (see [`ingest`]). A
/// pack holding an object stored whole above `big_object_bytes`
/// ([`crate::BIG_OBJECT_BYTES`]) is indexed by streaming it, so the object is
/// never held in memory.
///
/// Whether a pack of unknown make holds one takes a look-through inflating
/// every entry. A pack file no larger than that bound skips it: it goes to the
/// indexer at once with objects above the bound refused (an entry's
/// compressed bytes, which the indexer holds, are within the file, so within
/// the bound), and is looked through only when that fails. Nearly every push
/// is such a pack. With `max_object_bytes` at most the bound, every pack is.
/// A bigger pack file is looked through beside the indexer, which reads no
/// entry before it is checked ([`indexed_behind_look_through`]).
///
/// The look-through also refuses, before any indexer allocates it, an entry
/// making an object above `max_object_bytes`
/// ([`PackError::ObjectTooLarge`]) and a delta whose instructions do not make
/// what it claims: after a failed first attempt, it names why it failed.
///
/// A REF_DELTA may name as its base an object of the pack itself, which the
/// repository may hold too (a client that does not write offsets resending
/// what it thinks the server lacks). Completing the pack as thin then adds
/// that object a second time, from the repository, and the index would name it
/// twice: the pack is ingested once more without looking those objects up.
/// What the client's pack itself holds twice is refused again.
pub fn ingest_file(
    path: &Path,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
) -> Result<Option<IngestedPack>> {
    match ingest_file_once(path, work_dir, db, options) {
        Err(PackError::DuplicateObjects(mut twice)) if options.bases_in_pack.is_empty() => {
            twice.sort_unstable();
            let options = IngestOptions {
                bases_in_pack: twice,
                ..options.clone()
            };
            ingest_file_once(path, work_dir, db, &options)
        }
        ingested => ingested,
    }
}

/// [`ingest_file`]'s one attempt.
fn ingest_file_once(
    path: &Path,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
) -> Result<Option<IngestedPack>> {
    let max = options.max_object_bytes as u64;
    let big = options.big_object_bytes;
    let open = || -> Result<_> {
        let file = std::fs::File::open(path).map_err(PackError::io("reading the received pack"))?;
        Ok(std::io::BufReader::with_capacity(256 * 1024, file))
    };
    let holds_big = match options.largest_whole {
        Some(size) => size > big,
        None => {
            let len = std::fs::metadata(path)
                .map_err(PackError::io("reading the received pack"))?
                .len();
            if len <= big || max <= big {
                let limit = usize::try_from(big.min(max)).unwrap_or(usize::MAX);
                let first = match index_verified(&mut open()?, work_dir, db, options, limit) {
                    Ok(ingested) => return Ok(ingested),
                    // An object refused for what it is, not for its size.
                    Err(
                        refused @ (PackError::Fsck(_)
                        | PackError::DuplicateObjects(_)
                        | PackError::MalformedObject { .. }
                        | PackError::MissingObject(_)
                        | PackError::ObjectTooLarge { .. }),
                    ) => return Err(refused),
                    Err(first) => first,
                };
                // Why it failed: a refusal of the look-through's, a big
                // object to stream, or else the indexer's own words.
                match look_through(path, big, max, &|_| {})? {
                    // Nothing above the bound may be stored: there is no
                    // other way to index it.
                    _ if max <= big => return Err(first),
                    // Broken: the entries after the one that does not read
                    // are unchecked, and no indexer may read them.
                    Found::Unreadable(_) => return Err(first),
                    Found::Big => true,
                    // A delta making an object above the bound.
                    Found::NoBig => false,
                }
            } else {
                match indexed_behind_look_through(path, work_dir, db, options)? {
                    Some(ingested) => return Ok(ingested),
                    None => true,
                }
            }
        }
    };
    if holds_big {
        let indexed = crate::stream_index::index_big_pack(path, work_dir, db, big, max)?;
        return verified(Some((indexed.pack_path, indexed.index_path)), db, options);
    }
    ingest(&mut open()?, work_dir, db, options)
}

/// Index the pack file at `path` with gix while the look-through checks it,
/// on two threads, gix reading no entry the look-through has not checked (see
/// [`crate::gate`]). The look-through (0.5 s of a 2.1 s ingest of a
/// 505k-object push) runs beside the indexer's first pass, which reads and
/// inflates the file at about the same pace: 2.13 → 1.67 s, median of 18.
///
/// `None` when the pack holds an object stored whole above
/// `big_object_bytes` (gix was stopped before it). The look-through's
/// refusal when it refuses an entry or cannot read one (gix was stopped
/// there too), else gix's outcome.
fn indexed_behind_look_through(
    path: &Path,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
) -> Result<Option<Option<IngestedPack>>> {
    use crate::gate::{Gate, GatedFile, Keeper};
    let (big, max) = (options.big_object_bytes, options.max_object_bytes as u64);
    let file = std::fs::File::open(path).map_err(PackError::io("reading the received pack"))?;
    let gate = Gate::new();
    std::thread::scope(|s| {
        let look = std::thread::Builder::new()
            .name("pack-look-through".into())
            .spawn_scoped(s, || {
                let keeper = Keeper::new(&gate);
                let found = look_through(path, big, max, &|at| keeper.advance(at));
                // Past an entry that does not read cleanly nothing is
                // checked: the indexer stops there too (it fails on it, or
                // is refused the bytes after it).
                if let Ok(Found::NoBig) = found {
                    keeper.open();
                }
                found
            })
            .map_err(PackError::io("starting the pack's look-through"))?;
        let mut input = std::io::BufReader::with_capacity(256 * 1024, GatedFile::new(file, &gate));
        let indexed = index_verified(&mut input, work_dir, db, options, options.max_object_bytes);
        let found = look
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        match found {
            Found::Big => Ok(None),
            Found::NoBig => indexed.map(Some),
            // The indexer was refused that entry: the look-through says why.
            Found::Unreadable(why) => Err(why),
        }
    })
}

/// Index, complete and verify the pack read from `input`, writing the result into `work_dir`.
///
/// Returns `Ok(None)` for an empty pack (zero objects), which git sends for pushes
/// that only delete refs or only move refs to objects the server has.
pub fn ingest(
    input: &mut dyn BufRead,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
) -> Result<Option<IngestedPack>> {
    index_verified(input, work_dir, db, options, options.max_object_bytes)
}

/// Index, complete and verify the pack read from `input` into `work_dir`,
/// allocating no object (or delta base) above `alloc_limit`: in one traversal
/// of its deltas ([`crate::resolve`]), or, for a pack naming bases of its own
/// by id, indexed by gix and then verified.
fn index_verified(
    input: &mut dyn BufRead,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
    alloc_limit: usize,
) -> Result<Option<IngestedPack>> {
    use crate::resolve::{index_and_verify, Resolved};
    match index_and_verify(input, work_dir, db, options, alloc_limit)? {
        Resolved::Done(ingested) => Ok(ingested.map(|pack| *pack)),
        Resolved::NamesBasesById(completed) => {
            let file =
                std::fs::File::open(&completed).map_err(PackError::io("reading the pack"))?;
            let mut input = std::io::BufReader::with_capacity(256 * 1024, file);
            let indexed = index(&mut input, work_dir, db, options, alloc_limit)?;
            verified(indexed, db, options)
        }
    }
}

/// Index (and complete) the pack read from `input` into a pack and index in
/// `work_dir`, allocating no object (or delta base) above `alloc_limit`; `None`
/// for an empty pack. Nothing is left in `work_dir` when it fails: the indexer
/// writes temporary files and names them only once the index is complete.
fn index(
    input: &mut dyn BufRead,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
    alloc_limit: usize,
) -> Result<Option<(PathBuf, PathBuf)>> {
    let interrupt = AtomicBool::new(false);
    let lookup = BaseLookup::new(db, options);
    let outcome = gix_pack::Bundle::write_to_directory(
        input,
        Some(work_dir),
        &mut gix_utils::progress::Discard,
        &interrupt,
        Some(lookup),
        gix_hash::Kind::Sha1,
        gix_pack::bundle::write::Options {
            thread_limit: Some(options.threads.max(1)),
            iteration_mode: gix_pack::data::input::Mode::Verify,
            index_version: gix_pack::index::Version::V2,
            alloc_limit_bytes: Some(alloc_limit),
            compression: gix_zlib::Compression::DEFAULT,
        },
    )
    .map_err(|err| PackError::InvalidPack(one_line(&err)))?;

    let (Some(pack_path), Some(index_path)) = (outcome.data_path, outcome.index_path) else {
        return Ok(None);
    };
    if let Some(keep) = outcome.keep_path {
        // The keep file guards against a concurrent `git gc`; we have none here.
        let _ = std::fs::remove_file(keep);
    }
    Ok(Some((pack_path, index_path)))
}

/// The indexed pack (`None`: an empty one) with every object verified.
fn verified(
    indexed: Option<(PathBuf, PathBuf)>,
    db: &ObjectDb,
    options: &IngestOptions,
) -> Result<Option<IngestedPack>> {
    let Some((pack_path, index_path)) = indexed else {
        return Ok(None);
    };
    let pack = PackHandle::open(&index_path)?;
    let (objects, roots) = verify_objects(&pack, db, options)?;
    Ok(Some(IngestedPack {
        pack,
        pack_path,
        index_path,
        objects,
        roots,
    }))
}

/// An error's words on one line (gix's span several).
pub(crate) fn one_line(err: &dyn std::fmt::Display) -> String {
    err.to_string().replace('\n', " ")
}

/// Ids named by a pack's objects that [`verify_objects`] gathers before
/// looking them up (20 bytes each).
const CHECK_BATCH: usize = 64 << 10;

/// Delta bases kept while verifying a pushed pack.
const VERIFY_CACHE_BYTES: usize = 8 << 20;

/// Refuse a pack holding an object twice, as `git index-pack --strict` does
/// ("the same object appears twice in the pack"). git never writes one, and
/// an index naming one id at two offsets is ambiguous: if one of them is a
/// REF_DELTA against that very id, a reader that finds it first finds its base
/// is itself — an object verified once, unreadable later.
fn refuse_duplicates(pack: &PackHandle) -> Result<()> {
    // The index is sorted by id: a duplicate sits next to its twin.
    let mut previous: Option<ObjectId> = None;
    let mut twice = Vec::new();
    for id in pack.oids()? {
        if previous == Some(id) && twice.last() != Some(&id) {
            twice.push(id);
        }
        previous = Some(id);
    }
    match twice.is_empty() {
        true => Ok(()),
        false => Err(PackError::DuplicateObjects(twice)),
    }
}

/// Run git's fsck checks on the commit, tree or tag `id` of `kind` and parse
/// it, adding the ids it names to `named` (not a tree's gitlinks: those name
/// commits of another repository).
pub(crate) fn check_and_name(
    id: &ObjectId,
    kind: Kind,
    data: &[u8],
    level: FsckLevel,
    named: &mut Vec<ObjectId>,
) -> Result<()> {
    fsck::check_object(id, kind, data, level)?;
    let parsed = ObjectRef::from_bytes(data, kind, gix_hash::Kind::Sha1).map_err(|err| {
        PackError::MalformedObject {
            oid: *id,
            detail: one_line(&err),
        }
    })?;
    match parsed {
        ObjectRef::Commit(commit) => {
            named.push(commit.tree());
            named.extend(commit.parents());
        }
        ObjectRef::Tree(tree) => {
            let names = tree.entries.iter().filter(|entry| !entry.mode.is_commit());
            named.extend(names.map(|entry| entry.oid.to_owned()));
        }
        ObjectRef::Tag(tag) => named.push(tag.target()),
        ObjectRef::Blob(_) => {}
    }
    Ok(())
}

/// Parse every object of the pack and check that everything it references
/// exists; with the pack's roots when it is closed (see [`IngestedPack::roots`]).
fn verify_objects(
    pack: &PackHandle,
    db: &ObjectDb,
    options: &IngestOptions,
) -> Result<(Vec<IngestedObject>, Option<Vec<ObjectId>>)> {
    refuse_duplicates(pack)?;
    // Decoding in pack order finds most bases just decoded: a small cache does.
    let mut state = DecodeState::with_cache_bytes(VERIFY_CACHE_BYTES);
    let mut buf = Vec::new();
    let listed = if options.list_objects {
        pack.num_objects() as usize
    } else {
        0
    };
    let mut objects = Vec::with_capacity(listed);
    let mut list = |id: ObjectId, kind: Kind, size: u64| -> Result<()> {
        if options.list_objects {
            let already_stored = db.contains(&id)?;
            objects.push(IngestedObject {
                id,
                kind,
                size,
                already_stored,
            });
        }
        Ok(())
    };
    // Which of the pack's objects another of them names (by index), and whether
    // any names an object outside the pack.
    let mut named = vec![false; pack.num_objects() as usize];
    let mut outside = false;
    // The ids named, looked up a sorted batch at a time: the index is then read
    // in order, each search starting where the last ended, where one search
    // an id read some four places of it far apart (~6% of a compaction of
    // 2.5M objects).
    let mut pending: Vec<ObjectId> = Vec::new();
    let mut check_pending = |pending: &mut Vec<ObjectId>| -> Result<()> {
        pending.sort_unstable();
        pending.dedup();
        let mut lookups = pack.sorted_lookups();
        for target in pending.drain(..) {
            match lookups.lookup(&target)? {
                Some(index) => named[index as usize] = true,
                None if db.contains(&target)? => outside = true,
                None => return Err(PackError::MissingObject(target)),
            }
        }
        Ok(())
    };
    // In pack order, so delta bases are fresh in the decode cache.
    for index in pack.indices_in_pack_order() {
        let id = pack.oid_at(index)?;
        // Blobs reference nothing and need no parse: their headers tell all, so a
        // big blob is never inflated here (indexing has hashed it already).
        let (header_kind, size) = pack.object_header(index, &mut state)?;
        if size > options.max_object_bytes as u64 {
            return Err(PackError::InvalidPack(format!(
                "object {id} is larger than the limit"
            )));
        }
        if header_kind == Kind::Blob {
            list(id, header_kind, size)?;
            continue;
        }
        let kind = pack.decode(index, &mut buf, &mut state)?;
        if buf.len() > options.max_object_bytes {
            return Err(PackError::InvalidPack(format!(
                "object {id} is larger than the limit"
            )));
        }
        check_and_name(&id, kind, &buf, options.fsck, &mut pending)?;
        if pending.len() >= CHECK_BATCH {
            check_pending(&mut pending)?;
        }
        list(id, kind, buf.len() as u64)?;
    }
    check_pending(&mut pending)?;
    let roots = match outside {
        true => None,
        false => Some(
            (0..pack.num_objects())
                .filter(|index| !named[*index as usize])
                .map(|index| pack.oid_at(index))
                .collect::<Result<_>>()?,
        ),
    };
    Ok((objects, roots))
}
