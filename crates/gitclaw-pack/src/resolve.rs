//! A pushed pack indexed and verified in one traversal of its deltas.
//!
//! gix-pack reads the pack (completing it when thin) and builds the tree of
//! its deltas; the traversal hands each object, resolved, to one callback on
//! one of the resolving threads, which hashes it and, for a commit, tree or
//! tag, runs git's fsck checks on it and gathers the ids it names. The index
//! is then written from the hashes, and the names checked against it and the
//! repository. gix's own `Bundle::write_to_directory` only hashes in its
//! traversal, so verifying after it decoded every commit, tree and tag a
//! second time, one thread, through a cache of delta bases: 19% of a push's
//! server CPU on a real repository.
//!
//! A pack whose deltas name a base of the pack itself by id (REF_DELTA; git
//! names only a thin pack's outside bases so, when the client can take
//! offsets) cannot be laid out as a tree before it is hashed; it is indexed
//! and verified the two-pass way ([`Resolved::NamesBasesById`]).

use std::{
    io::{BufRead, BufWriter, Read, Seek, SeekFrom, Write},
    path::Path,
    sync::{atomic::AtomicBool, Mutex},
};

use gix_hash::ObjectId;
use gix_object::Kind;
use gix_pack::{cache::delta, data};

use crate::{
    ingest::{check_and_name, one_line, BaseLookup, IngestOptions, IngestedObject, IngestedPack},
    odb::{DecodeState, ObjectDb, PackHandle},
    PackError, Result,
};

/// What became of a pack handed to [`index_and_verify`].
pub(crate) enum Resolved {
    /// Indexed and verified (`None`: a pack of no objects).
    Done(Option<Box<IngestedPack>>),
    /// The pack, completed, names a base of its own by id: it is at this
    /// path (a temporary file, removed when dropped) for the two-pass way.
    NamesBasesById(tempfile::TempPath),
}

/// One entry of the pack, filled in by the traversal (40 bytes).
struct Record {
    offset: u64,
    id: ObjectId,
    crc32: u32,
    /// The object's size, up to `u32::MAX` (a bigger one is read again from
    /// the pack when listed).
    size: u32,
    kind: Kind,
}

/// Ids gathered before they are sorted: each resolving thread's batch.
const BATCH: usize = 16 << 10;

/// The ids the pack's objects name, gathered from every resolving thread and
/// kept sorted and without repeats once they outgrow half as much again as
/// they were at the last sort (each id named by many trees is then held about
/// once; at most some 30 bytes an id named).
#[derive(Default)]
struct NamedIds {
    ids: Vec<ObjectId>,
    sorted_len: usize,
}

impl NamedIds {
    fn add(&mut self, batch: &mut Vec<ObjectId>) {
        self.ids.append(batch);
        if self.ids.len() > self.sorted_len + self.sorted_len / 2 + BATCH {
            self.ids.sort_unstable();
            self.ids.dedup();
            self.sorted_len = self.ids.len();
        }
    }

    fn into_sorted(mut self) -> Vec<ObjectId> {
        self.ids.sort_unstable();
        self.ids.dedup();
        self.ids
    }
}

/// One resolving thread's view of what the traversal gathers: its own batch
/// of named ids, handed over when full and when the thread is done with it.
struct Gatherer<'a> {
    named: &'a Mutex<NamedIds>,
    /// The first refusal of an object (a failed fsck check, a parse error):
    /// gix's traversal carries only its own error type, so ours waits here.
    refused: &'a Mutex<Option<PackError>>,
    batch: Vec<ObjectId>,
}

impl Clone for Gatherer<'_> {
    fn clone(&self) -> Self {
        Gatherer {
            named: self.named,
            refused: self.refused,
            batch: Vec::new(),
        }
    }
}

impl Gatherer<'_> {
    fn hand_over(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut named = self.named.lock().unwrap_or_else(|p| p.into_inner());
        named.add(&mut self.batch);
    }

    fn refuse(&self, err: PackError) -> gix_error::Error {
        let message = one_line(&err);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.get_or_insert(err);
        gix_error::Error::from_error(std::io::Error::other(message))
    }

    /// Hash one resolved object into `record`; check and parse it unless it
    /// is a blob, gathering the ids it names.
    fn inspect(
        &mut self,
        record: &mut Record,
        kind: Kind,
        bytes: &[u8],
        options: &IngestOptions,
    ) -> std::result::Result<(), PackError> {
        if bytes.len() > options.max_object_bytes {
            return Err(PackError::ObjectTooLarge {
                offset: record.offset,
                size: bytes.len() as u64,
                limit: options.max_object_bytes as u64,
            });
        }
        let id = gix_object::compute_hash(gix_hash::Kind::Sha1, kind, bytes)
            .map_err(|err| PackError::InvalidPack(one_line(&err)))?;
        record.id = id;
        record.kind = kind;
        record.size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if kind == Kind::Blob {
            return Ok(());
        }
        check_and_name(&id, kind, bytes, options.fsck, &mut self.batch)?;
        if self.batch.len() >= BATCH {
            self.hand_over();
        }
        Ok(())
    }
}

impl Drop for Gatherer<'_> {
    fn drop(&mut self) {
        self.hand_over();
    }
}

/// The pack file being written: gix writes it through a buffer, then reads it
/// back from the start to hash it.
struct Spool<'a>(&'a mut BufWriter<std::fs::File>);

impl Write for Spool<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Read for Spool<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.flush()?;
        self.0.get_mut().read(buf)
    }
}

impl Seek for Spool<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

fn invalid(err: gix_error::Error) -> PackError {
    PackError::InvalidPack(one_line(&err))
}

/// Read the pack from `input` into `work_dir`, completed when thin, and index
/// and verify it (see the module's words), allocating no object or delta
/// base above `alloc_limit`. Nothing is left in `work_dir` when it fails.
pub(crate) fn index_and_verify(
    input: &mut dyn BufRead,
    work_dir: &Path,
    db: &ObjectDb,
    options: &IngestOptions,
    alloc_limit: usize,
) -> Result<Resolved> {
    let io = |what: &'static str| PackError::io(what);
    let spool = tempfile::NamedTempFile::new_in(work_dir).map_err(io("writing the pack"))?;
    let (file, spool_path) = spool.into_parts();
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let lookup = BaseLookup::new(db, options);
    let entries = data::input::BytesToEntriesIter::new_from_header(
        input,
        data::input::Mode::Verify,
        data::input::EntryDataMode::KeepAndCrc32,
        gix_hash::Kind::Sha1,
    )
    .map_err(invalid)?;
    let version = entries.version();
    let completed = data::input::LookupRefDeltaObjectsIter::new(
        entries,
        lookup,
        gix_zlib::Compression::DEFAULT,
    );
    let written = data::input::EntriesToBytesIter::new(
        completed,
        Spool(&mut out),
        version,
        gix_hash::Kind::Sha1,
    );
    // Where each entry starts and its CRC-32, until the tree is built.
    let mut entries = Vec::new();
    let mut names_by_id = false;
    let mut trailer = None;
    let mut end = 0;
    for entry in written {
        let entry = entry.map_err(invalid)?;
        names_by_id |= matches!(entry.header, data::entry::Header::RefDelta { .. });
        end = entry.pack_offset + u64::from(entry.header_size) + entry.compressed_size;
        trailer = entry.trailer.or(trailer);
        entries.push((entry.pack_offset, entry.crc32.unwrap_or_default()));
    }
    out.flush().map_err(io("writing the pack"))?;
    drop(out);
    if entries.is_empty() {
        return Ok(Resolved::Done(None));
    }
    if names_by_id {
        return Ok(Resolved::NamesBasesById(spool_path));
    }
    let checksum =
        trailer.ok_or_else(|| PackError::InvalidPack("the pack has no checksum".into()))?;

    let pack = data::File::at(&spool_path, gix_hash::Kind::Sha1).map_err(invalid)?;
    let interrupt = AtomicBool::new(false);
    let tree = delta::Tree::from_offsets_in_pack(
        &spool_path,
        entries.into_iter().map(|(offset, crc32)| Record {
            offset,
            id: ObjectId::null(gix_hash::Kind::Sha1),
            crc32,
            size: 0,
            kind: Kind::Blob,
        }),
        &|record: &Record| record.offset,
        // No entry names its base by id (see above).
        &|_| Ok(None),
        &mut gix_utils::progress::Discard,
        &interrupt,
        gix_hash::Kind::Sha1,
    )
    .map_err(invalid)?;
    let named = Mutex::new(NamedIds::default());
    let refused = Mutex::new(None);
    let mut gatherer = Gatherer {
        named: &named,
        refused: &refused,
        batch: Vec::new(),
    };
    let traversed = tree.traverse(
        |range, pack: &data::File| pack.entry_slice(range),
        &pack,
        end,
        move |record: &mut Record, _, context: delta::traverse::Context<'_>| {
            let kind = context.entry.header.as_kind().ok_or_else(|| {
                gatherer.refuse(PackError::InvalidPack(format!(
                    "delta at {} was handed over unresolved",
                    record.offset
                )))
            })?;
            gatherer
                .inspect(record, kind, context.decompressed, options)
                .map_err(|err| gatherer.refuse(err))
        },
        delta::traverse::Options {
            object_progress: Box::new(gix_utils::progress::Discard),
            size_progress: &mut gix_utils::progress::Discard,
            thread_limit: Some(options.threads.max(1)),
            should_interrupt: &interrupt,
            object_hash: gix_hash::Kind::Sha1,
            alloc_limit_bytes: Some(alloc_limit),
        },
    );
    let refused = refused.into_inner().unwrap_or_else(|p| p.into_inner());
    let traversed = match (traversed, refused) {
        (_, Some(err)) => return Err(err),
        (Err(err), None) => return Err(invalid(err)),
        (Ok(traversed), None) => traversed,
    };
    drop(pack);
    let mut items = traversed.roots;
    items.extend(traversed.children);
    // In the index's order, so position `i` of the index is `items[i]`.
    items.sort_unstable_by_key(|item| item.data.id);

    let pack_path = work_dir.join(format!("pack-{checksum}.pack"));
    let index_path = pack_path.with_extension("idx");
    let sorted = items
        .iter()
        .map(|item| (item.data.id, item.data.crc32, item.offset));
    crate::stream_index::write_index(&index_path, sorted, &checksum)?;
    let pack_path = match spool_path.persist(&pack_path) {
        Ok(()) => pack_path,
        Err(err) => {
            let _ = std::fs::remove_file(&index_path);
            return Err(PackError::io("naming the pack")(err.error));
        }
    };
    let indexed = (|| {
        let pack = PackHandle::open(&index_path)?;
        let named = named.into_inner().unwrap_or_else(|p| p.into_inner());
        let (named_here, outside) = where_named(&pack, db, named.into_sorted())?;
        let roots = match outside {
            true => None,
            false => Some(
                items
                    .iter()
                    .zip(&named_here)
                    .filter(|(_, named)| !**named)
                    .map(|(item, _)| item.data.id)
                    .collect(),
            ),
        };
        drop(named_here);
        let mut state = DecodeState::default();
        let objects = match options.list_objects {
            true => (0u32..)
                .zip(&items)
                .map(|(index, item)| {
                    let record = &item.data;
                    let size = match record.size {
                        u32::MAX => pack.object_size(index, &mut state)?,
                        size => u64::from(size),
                    };
                    Ok(IngestedObject {
                        id: record.id,
                        kind: record.kind,
                        size,
                        already_stored: db.contains(&record.id)?,
                    })
                })
                .collect::<Result<_>>()?,
            false => Vec::new(),
        };
        Ok(IngestedPack {
            pack,
            pack_path: pack_path.clone(),
            index_path: index_path.clone(),
            objects,
            roots,
        })
    })();
    if indexed.is_err() {
        let _ = std::fs::remove_file(&pack_path);
        let _ = std::fs::remove_file(&index_path);
    }
    indexed.map(|pack| Resolved::Done(Some(Box::new(pack))))
}

/// Which of the pack's objects (by index position) another of them names, and
/// whether one names an object outside it; an error for a named id that is
/// neither in the pack nor stored. `named` is sorted: the index is then read
/// in order, each search starting where the last ended.
fn where_named(
    pack: &PackHandle,
    db: &ObjectDb,
    named: Vec<ObjectId>,
) -> Result<(Vec<bool>, bool)> {
    let mut here = vec![false; pack.num_objects() as usize];
    let mut outside = false;
    let mut lookups = pack.sorted_lookups();
    for id in named {
        match lookups.lookup(&id)? {
            Some(index) => here[index as usize] = true,
            None if db.contains(&id)? => outside = true,
            None => return Err(PackError::MissingObject(id)),
        }
    }
    Ok((here, outside))
}
