//! Streams a version-2 pack for a list of objects.
//!
//! Reuse first: stored entries are copied verbatim (CRC-checked against their
//! index) — whole objects as they are, deltas when their base goes out in the same
//! pack, as an OFS_DELTA when the base was already written and the client speaks
//! `ofs-delta`, else as a REF_DELTA. Objects with nothing to reuse (loose objects,
//! deltas whose base is not sent) go through a delta search over a sliding window,
//! as git does it: sorted by type, path-name hash and size, each is tried against
//! the previous `window` objects, and the smallest delta under half the object's
//! size wins, within a maximum chain depth. What finds no delta goes out whole.
//! Objects go out grouped by pack in offset order, each delta's base (stored
//! or found by the search) moved ahead of it. A stored delta whose base is not
//! sent may have a [tip entry](crate::tip_entries) to copy instead of a search.
//! A pack may also
//! start with every entry of a stored pack closed under reachability
//! ([`write_pack_after`]); the listed objects follow it and may keep their
//! stored deltas against its entries.
//!
//! One job per module:
//! - `reuse`: decides, object by object, whether its stored entry can be copied.
//! - `delta_search`: finds new deltas for the objects with nothing to reuse.
//! - `entries`: writes the pack itself — header, entries, checksum.
//! - `zlib`: the compressor and decompressor a pack's entries share.
//!
//! Here: the options, the statistics, and the entry points that pick between
//! sending a stored pack as it is and writing one entry by entry.
//!
//! Not here: choosing the objects (see [`crate::walk`]).

mod delta_search;
mod entries;
mod reuse;
mod whole;
mod zlib;

pub use whole::{write_whole_pack, WholeObject};

use std::io::Write;

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    odb::{Location, ObjectDb, PackHandle},
    walk::WalkObject,
    PackError, Result,
};

/// How to write the pack.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The client understands OFS_DELTA entries.
    pub ofs_delta: bool,
    /// zlib level for objects that are deflated anew. The default is 7: git's is
    /// zlib's 6, but at 6 zlib-rs takes zlib-ng's faster "medium" strategy, which
    /// packs source files about 0.6% larger; at 7 it matches git for about the
    /// same time.
    pub compression: u32,
    /// Objects each delta candidate is compared with (git's `pack.window`); 0 disables the search.
    pub window: usize,
    /// Longest chain of new deltas (git's `pack.depth`).
    pub max_depth: u32,
    /// Objects larger than this are never delta-searched, and go out from a loose
    /// object streamed, never read whole (git's `core.bigFileThreshold`).
    pub max_delta_object_bytes: u64,
    /// The client asked for a thin pack: stored deltas against objects it has may be
    /// sent as they are (REF_DELTA to a base outside the pack).
    pub thin: bool,
    /// Threads the delta search may use (git's `pack.threads`); capped by the cores.
    pub threads: usize,
    /// Fewest objects worth a search thread of their own.
    pub objects_per_thread: usize,
    /// Write the objects in the order given rather than grouped by stored pack
    /// in offset order, each delta's base moved just ahead of it — but for the
    /// trees and blobs past the first `lead` objects, which go in delta
    /// families, as git lays a pack out: each chain's whole object, then the
    /// deltas against it, then theirs; every tree's family before any blob's,
    /// the lead's first. Compaction's packs are written so, given commits, a
    /// tip's trees and blobs, the trees of its last commits (`lead` ends
    /// there), the other trees, then the other blobs: what a shallow clone of
    /// the tip sends lies together (a few ranged reads on a fresh instance, few
    /// pages), so do the trees a fetch of a few commits reads of the client's
    /// side, and every other delta lies next to its base (one-byte offsets, as
    /// in git's packs).
    pub keep_order: bool,
    /// See `keep_order`.
    pub lead: usize,
    /// Deflate every copied stored entry again at zlib's best level and keep
    /// whichever stream is smaller (compaction: background work once, for a
    /// pack every later clone gets smaller — git's packs use level 6). Entries
    /// above `max_delta_object_bytes` inflated are copied as they are.
    pub recompress: bool,
    /// Search every stored whole tree and blob for a delta too, as `git
    /// repack -a` does (compaction: what pushes stored whole, or as deltas
    /// against a thin push's bases, may pair better across all of history).
    pub search_whole: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            ofs_delta: true,
            compression: 7,
            window: 10,
            max_depth: 50,
            max_delta_object_bytes: crate::BIG_OBJECT_BYTES,
            thin: false,
            threads: usize::MAX,
            objects_per_thread: 2048,
            keep_order: false,
            lead: 0,
            recompress: false,
            search_whole: false,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct WriteStats {
    pub objects: u32,
    /// Entries copied verbatim from stored packs.
    pub reused: u32,
    /// Of those, deltas.
    pub reused_deltas: u32,
    /// Deltas found by the delta search.
    pub new_deltas: u32,
    pub bytes: u64,
    pub checksum: Option<ObjectId>,
    /// The pack went out as one stored pack file, untouched.
    pub whole_pack: bool,
    /// The largest object written whole (its inflated size; 0 for none), when
    /// the writer read every entry it wrote — not for a stored pack sent as
    /// it is, nor one with a stored pack's entries copied ahead of the others.
    pub largest_whole: Option<u64>,
}

/// What a thin pack may lean on: objects the client has.
#[derive(Debug, Clone, Copy)]
pub struct ClientHas<'a> {
    /// Every object known to be the client's: stored deltas against these go out
    /// as they are.
    pub ids: &'a gix_hashtable::HashSet<ObjectId>,
    /// Trees and blobs the client has, with the path-name hashes they were met at:
    /// bases the delta search tries for the objects at the same paths.
    pub bases: &'a [WalkObject],
    /// What the client's older history holds, where compaction recorded it:
    /// stored deltas against those go out as they are too.
    pub history: Option<&'a crate::walk::ClientHistory>,
    /// The client's partial-clone filter: no delta leans on a kind of object
    /// it may have left out ([`crate::walk::Filter::keeps_every`]).
    pub filter: Option<&'a crate::walk::Filter>,
}

impl ClientHas<'_> {
    /// Whether a delta may lean on the client's objects of `kind`.
    pub(crate) fn holds_every(&self, kind: Kind) -> bool {
        self.filter.is_none_or(|filter| filter.keeps_every(kind))
    }
}

/// The phases of writing a pack that report progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The delta search: objects searched out of those that need a delta.
    Compressing,
    /// Entries written out of all entries of the pack.
    Writing,
}

/// Progress of a pack being written: phase, done, total. It is offered often
/// (during a long delta search at least every quarter second, from the calling
/// thread); the callee decides by the clock when to speak.
pub type ProgressFn<'a> = &'a mut dyn FnMut(Phase, u32, u32);

/// When one stored pack holds exactly `objects` (a full clone of a compacted
/// repository), copy the pack file as it is: no per-entry work at all.
fn whole_pack(
    db: &ObjectDb,
    objects: &[WalkObject],
    options: &WriteOptions,
) -> Result<Option<usize>> {
    let Some(first) = objects.first() else {
        return Ok(None);
    };
    let Some(Location::Packed { pack, .. }) = db.locate(&first.id)? else {
        return Ok(None);
    };
    let handle = &db.packs()[pack];
    if handle.num_objects() as usize != objects.len() {
        return Ok(None);
    }
    // Equal counts and every object found in this pack: the sets are equal (ids are unique).
    for object in objects {
        if handle.lookup(&object.id)?.is_none() {
            return Ok(None);
        }
    }
    if !options.ofs_delta && handle.has_ofs_deltas()? {
        return Ok(None);
    }
    Ok(Some(pack))
}

/// Send a stored pack file as it is (it must suit the client: see
/// [`PackHandle::has_ofs_deltas`] for clients without `ofs-delta`).
pub fn stream_pack(
    handle: &PackHandle,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    let bytes = handle.raw_pack()?;
    let count = handle.num_objects();
    progress(Phase::Writing, 0, count);
    for chunk in bytes.chunks(1 << 20) {
        out.write_all(chunk)
            .map_err(PackError::io("sending pack data"))?;
    }
    out.flush().map_err(PackError::io("sending pack data"))?;
    progress(Phase::Writing, count, count);
    Ok(WriteStats {
        objects: count,
        reused: count,
        reused_deltas: 0,
        new_deltas: 0,
        bytes: bytes.len() as u64,
        checksum: Some(*handle.hash()),
        whole_pack: true,
        largest_whole: None,
    })
}

/// Write a pack holding exactly `objects` to `out`. `client_has` (used when
/// `options.thin`) names objects the client already has, which deltas may use as
/// bases without sending them.
pub fn write_pack(
    db: &ObjectDb,
    objects: &[WalkObject],
    client_has: Option<ClientHas<'_>>,
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    // A pack rewritten in walk order is never the stored one as is.
    if !options.keep_order {
        if let Some(pack) = whole_pack(db, objects, options)? {
            return stream_pack(&db.packs()[pack], out, progress);
        }
    }
    entries::write_entries(db, None, objects, client_has, options, out, progress)
}

/// What of a stored pack's entries a partial clone leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    Nothing,
    /// `blob:none`.
    Blobs,
    /// `tree:0`: commits and tags only.
    TreesAndBlobs,
}

impl Leave {
    /// Whether an entry of this type goes out.
    pub fn keeps(self, kind: Kind) -> bool {
        match self {
            Leave::Nothing => true,
            Leave::Blobs => kind != Kind::Blob,
            Leave::TreesAndBlobs => !matches!(kind, Kind::Tree | Kind::Blob),
        }
    }
}

/// Write a pack of every entry of the stored pack `first`, copied as it is (but
/// for the types a partial clone leaves out, `leave`), then `objects` (none of
/// which `first` holds): the answer to a clone whose history `first` holds all
/// of but the newest part. Deltas of `objects` may use bases in `first`. `first`
/// must suit the client (see [`PackHandle::has_ofs_deltas`]).
///
/// Without some types, `first`'s other entries are still copied as they lie: a
/// delta's base is of its own type, so it goes out too; only the distance to it
/// changes.
pub fn write_pack_after(
    db: &ObjectDb,
    first: &PackHandle,
    leave: Leave,
    objects: &[WalkObject],
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    let prefix = entries::Prefix::new(first, leave)?;
    entries::write_entries(db, Some(&prefix), objects, None, options, out, progress)
}

/// The [tip entries](crate::tip_entries) of the objects of one tip's tree
/// (`objects`, what a `--depth 1` clone of it sends): for each object whose
/// stored entry is a delta against an object not among them, the entry such a
/// clone writes afresh — a delta the search finds against another of them, or
/// the object whole. Objects above the delta search's size limit get none; so
/// do all past `max_bytes` of entries.
pub fn tip_entries(
    db: &ObjectDb,
    objects: &[WalkObject],
    options: &WriteOptions,
    max_bytes: u64,
) -> Result<Vec<crate::tip_entries::TipEntry>> {
    entries::fresh_entries(db, objects, options, max_bytes)
}
