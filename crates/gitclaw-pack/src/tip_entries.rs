//! Tip entries: for the objects of a branch head's tree whose stored entry in
//! the compacted pack is a delta against an object outside that tree (most
//! often the previous version of a file changed since), the entry a `--depth 1`
//! clone of the head sends instead — the object whole, or a delta against
//! another object of the tree — worked out once by compaction.
//!
//! Without them every cold shallow clone of the head would inflate, delta-search
//! and deflate those objects anew; with them it copies stored bytes only, while
//! the pack itself keeps the deltas a full clone wants (git gets the first with
//! delta islands, which cost every other request a larger pack).
//!
//! They are stored as one chunk, `GCTE`, of the pack's commit-graph file (git
//! and gitoxide skip the chunks they do not know). Its layout, integers
//! big-endian:
//!
//! ```text
//! u32            N, the number of entries
//! N × 20 bytes   object ids, ascending
//! N × 20 bytes   each entry's delta base (all zero: the entry is whole)
//! N × u64        each object's size
//! N × u32        each entry's peers: the objects the search could pair it with
//!                (of its type and path-name hash) when it was worked out
//! (N+1) × u64    where each entry starts in the data below; the last is its length
//! data           the entries, each as a pack holds it: type-and-size header,
//!                then for a delta the base id (a REF_DELTA), then the zlib stream
//! ```
//!
//! A reader keeps the tables in memory (60 bytes an entry) and
//! reads an entry's bytes from the file when a pack is written with it.

use std::{fs::File, os::unix::fs::FileExt, path::Path};

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use crate::{
    entry::{write_type_and_size, OBJ_BLOB, OBJ_COMMIT, OBJ_REF_DELTA, OBJ_TAG, OBJ_TREE},
    PackError, Result,
};

/// The chunk id in the commit-graph file.
pub const CHUNK_ID: [u8; 4] = *b"GCTE";
const HASH_LEN: usize = 20;
/// Table bytes an entry: id, base, object size, peers, offset.
const ENTRY_TABLE: usize = 2 * HASH_LEN + 8 + 4 + 8;
/// What an entry weighs beside its data (the table, kept in memory).
pub const TABLE_BYTES: u64 = ENTRY_TABLE as u64;

/// One entry, as compaction works it out and a pack writer copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipEntry {
    pub id: ObjectId,
    /// The object whose delta this is (`None`: the object whole).
    pub base: Option<ObjectId>,
    /// The object's type.
    pub kind: Kind,
    /// Inflated size of the entry data: the object, or the delta.
    pub size: u64,
    /// The object's size.
    pub object_size: u64,
    /// The objects of its type and path-name hash the delta search could pair
    /// it with, itself included: a request with more may find a better delta.
    pub peers: u32,
    /// The zlib stream.
    pub compressed: Vec<u8>,
}

/// The `GCTE` chunk holding some tip entries, laid out to be written piece
/// by piece (see [`encode`]).
pub struct EncodedTips<'a> {
    /// The count and the tables, up to the data.
    table: Vec<u8>,
    /// Each entry's header and its stored bytes, in id order.
    data: Vec<(Vec<u8>, &'a [u8])>,
}

impl EncodedTips<'_> {
    /// The chunk's length.
    pub fn len(&self) -> u64 {
        let data: usize = self
            .data
            .iter()
            .map(|(head, bytes)| head.len() + bytes.len())
            .sum();
        (self.table.len() + data) as u64
    }

    /// Whether the chunk holds no entry.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The chunk's bytes, in the pieces they are kept in.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.table[..]).chain(
            self.data
                .iter()
                .flat_map(|(head, bytes)| [&head[..], *bytes]),
        )
    }

    #[cfg(test)]
    fn to_vec(&self) -> Vec<u8> {
        self.parts().flatten().copied().collect()
    }
}

/// The `GCTE` chunk holding `entries` (any order; each id once). The entries'
/// bytes are not copied: the chunk is written from them (up to 16 MiB, which
/// one buffer would hold a second time beside them).
pub fn encode(entries: &[TipEntry]) -> EncodedTips<'_> {
    let mut sorted: Vec<&TipEntry> = entries.iter().collect();
    sorted.sort_unstable_by_key(|e| e.id);
    sorted.dedup_by_key(|e| e.id);
    let n = sorted.len();
    let data: Vec<(Vec<u8>, &[u8])> = sorted
        .iter()
        .map(|entry| {
            let mut head = Vec::with_capacity(10 + HASH_LEN);
            match entry.base {
                Some(base) => {
                    write_type_and_size(&mut head, OBJ_REF_DELTA, entry.size);
                    head.extend_from_slice(base.as_bytes());
                }
                None => {
                    write_type_and_size(&mut head, crate::entry::kind_type(entry.kind), entry.size)
                }
            }
            (head, &entry.compressed[..])
        })
        .collect();
    let mut table = Vec::with_capacity(4 + n * ENTRY_TABLE + 8);
    table.extend_from_slice(&(n as u32).to_be_bytes());
    for entry in &sorted {
        table.extend_from_slice(entry.id.as_bytes());
    }
    for entry in &sorted {
        match entry.base {
            Some(base) => table.extend_from_slice(base.as_bytes()),
            None => table.extend_from_slice(&[0; HASH_LEN]),
        }
    }
    for entry in &sorted {
        table.extend_from_slice(&entry.object_size.to_be_bytes());
    }
    for entry in &sorted {
        table.extend_from_slice(&entry.peers.to_be_bytes());
    }
    let mut at = 0u64;
    for (head, bytes) in &data {
        table.extend_from_slice(&at.to_be_bytes());
        at += (head.len() + bytes.len()) as u64;
    }
    table.extend_from_slice(&at.to_be_bytes());
    EncodedTips { table, data }
}

/// The tip entries of one commit-graph file, opened for lookups.
pub struct TipEntries {
    file: File,
    /// For a graph read by ranges: fills an entry's bytes before they are read.
    sparse: Option<std::sync::Arc<crate::odb::SparseFile>>,
    /// Where the entries' data starts in the file.
    data_start: u64,
    ids: Vec<ObjectId>,
    bases: Vec<Option<ObjectId>>,
    object_sizes: Vec<u64>,
    peers: Vec<u32>,
    offsets: Vec<u64>,
}

impl std::fmt::Debug for TipEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TipEntries({})", self.ids.len())
    }
}

/// An entry found by [`TipEntries::lookup`]: what classifying an object needs,
/// before its bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TipRef {
    pos: usize,
    pub base: Option<ObjectId>,
    pub object_size: u64,
    pub peers: u32,
}

impl TipEntries {
    /// The tip entries in the chunk at `range` of the file at `path`, checked for
    /// a consistent layout (the file's checksum is the graph's to check).
    pub fn open(path: &Path, range: std::ops::Range<u64>) -> Result<Self> {
        let corrupt =
            |what: &str| PackError::Corrupt(format!("tip entries in {}: {what}", path.display()));
        let file =
            File::open(path).map_err(PackError::io(format!("opening {}", path.display())))?;
        let len = range
            .end
            .checked_sub(range.start)
            .ok_or_else(|| corrupt("negative chunk"))?;
        let read = |at: u64, bytes: usize| -> Result<Vec<u8>> {
            let mut buf = vec![0u8; bytes];
            file.read_exact_at(&mut buf, range.start + at)
                .map_err(PackError::io(format!("reading {}", path.display())))?;
            Ok(buf)
        };
        if len < 4 {
            return Err(corrupt("chunk too short"));
        }
        let n = u32::from_be_bytes(read(0, 4)?.try_into().unwrap_or_default()) as u64;
        let table = n
            .checked_mul(ENTRY_TABLE as u64)
            .and_then(|t| t.checked_add(4 + 8))
            .filter(|t| *t <= len)
            .ok_or_else(|| corrupt("more entries than the chunk holds"))?;
        let n = n as usize;
        let raw = read(4, table as usize - 4)?;
        let (id_bytes, rest) = raw.split_at(n * HASH_LEN);
        let (base_bytes, rest) = rest.split_at(n * HASH_LEN);
        let (size_bytes, rest) = rest.split_at(n * 8);
        let (peer_bytes, offset_bytes) = rest.split_at(n * 4);
        let object_sizes = size_bytes
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
            .collect();
        let peers = peer_bytes
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
            .collect();
        let ids: Vec<ObjectId> = id_bytes
            .chunks_exact(HASH_LEN)
            .map(ObjectId::from_bytes_or_panic)
            .collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt("ids out of order"));
        }
        let bases = base_bytes
            .chunks_exact(HASH_LEN)
            .map(|b| (b != [0; HASH_LEN]).then(|| ObjectId::from_bytes_or_panic(b)))
            .collect();
        let offsets: Vec<u64> = offset_bytes
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
            .collect();
        let data_len = len - table;
        if offsets.windows(2).any(|w| w[0] >= w[1])
            || offsets.first() != Some(&0)
            || offsets.last() != Some(&data_len)
        {
            return Err(corrupt("entry offsets out of order or past the chunk"));
        }
        Ok(TipEntries {
            file,
            sparse: None,
            data_start: range.start + table,
            ids,
            bases,
            object_sizes,
            peers,
            offsets,
        })
    }

    /// The entries' bytes are read from `sparse` as they are needed.
    pub(crate) fn read_by_ranges(mut self, sparse: std::sync::Arc<crate::odb::SparseFile>) -> Self {
        self.sparse = Some(sparse);
        self
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes of memory the index of the entries takes (the entries' data is
    /// read from the file as sent).
    pub fn heap_bytes(&self) -> u64 {
        let per_entry = std::mem::size_of::<ObjectId>()
            + std::mem::size_of::<Option<ObjectId>>()
            + std::mem::size_of::<u64>() * 2
            + std::mem::size_of::<u32>();
        (self.ids.len() * per_entry) as u64
    }

    /// The entry of `id`, if there is one.
    pub fn lookup(&self, id: &oid) -> Option<TipRef> {
        let pos = self.ids.binary_search_by(|x| x.as_ref().cmp(id)).ok()?;
        Some(TipRef {
            pos,
            base: self.bases[pos],
            object_size: self.object_sizes[pos],
            peers: self.peers[pos],
        })
    }

    /// Where the entry at position `pos` lies in the file.
    fn entry_range(&self, pos: usize) -> std::ops::Range<u64> {
        self.data_start + self.offsets[pos]..self.data_start + self.offsets[pos + 1]
    }

    /// When the entries are read by ranges: read those `found` names now,
    /// side by side, rather than each when it is copied.
    pub fn prefetch(&self, found: impl IntoIterator<Item = TipRef>) -> Result<()> {
        let Some(sparse) = &self.sparse else {
            return Ok(());
        };
        let ranges: Vec<_> = found.into_iter().map(|f| self.entry_range(f.pos)).collect();
        sparse.prefetch(&ranges)
    }

    /// The entry `found` names, read from the file.
    pub fn read(&self, found: TipRef) -> Result<TipEntry> {
        let id = self.ids[found.pos];
        let corrupt = |what: &str| PackError::Corrupt(format!("tip entry of {id}: {what}"));
        let range = self.entry_range(found.pos);
        let mut bytes = vec![0u8; (range.end - range.start) as usize];
        if let Some(sparse) = &self.sparse {
            sparse.fill(range.clone())?;
        }
        self.file
            .read_exact_at(&mut bytes, range.start)
            .map_err(PackError::io("reading a tip entry"))?;
        let (type_id, size, mut at) = type_and_size(&bytes).ok_or_else(|| corrupt("bad header"))?;
        let kind = match type_id {
            OBJ_COMMIT => Some(Kind::Commit),
            OBJ_TREE => Some(Kind::Tree),
            OBJ_BLOB => Some(Kind::Blob),
            OBJ_TAG => Some(Kind::Tag),
            OBJ_REF_DELTA => None,
            _ => return Err(corrupt("unknown entry type")),
        };
        let base = match kind {
            Some(_) => None,
            None => {
                let base = bytes
                    .get(at..at + HASH_LEN)
                    .map(ObjectId::from_bytes_or_panic)
                    .ok_or_else(|| corrupt("truncated base"))?;
                at += HASH_LEN;
                Some(base)
            }
        };
        if base != found.base {
            return Err(corrupt("base differs from the table's"));
        }
        bytes.drain(..at);
        Ok(TipEntry {
            id,
            base,
            // A delta's own type is its base's: the caller knows it.
            kind: kind.unwrap_or(Kind::Blob),
            size,
            object_size: found.object_size,
            peers: found.peers,
            compressed: bytes,
        })
    }
}

/// A pack entry's type and inflated size, and the header's length.
fn type_and_size(bytes: &[u8]) -> Option<(u8, u64, usize)> {
    let mut byte = *bytes.first()?;
    let type_id = (byte >> 4) & 0x7;
    let mut size = u64::from(byte & 0x0f);
    let mut shift = 4;
    let mut at = 1;
    while byte & 0x80 != 0 {
        byte = *bytes.get(at)?;
        at += 1;
        if shift > 57 {
            return None;
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    Some((type_id, size, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[byte; 20])
    }

    #[test]
    fn entries_read_back_as_written() {
        let entries = vec![
            TipEntry {
                id: id(9),
                base: Some(id(3)),
                kind: Kind::Blob,
                size: 300,
                object_size: 4000,
                peers: 3,
                compressed: vec![1, 2, 3],
            },
            TipEntry {
                id: id(3),
                base: None,
                kind: Kind::Tree,
                size: 70_000,
                object_size: 70_000,
                peers: 1,
                compressed: vec![4; 40],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunk");
        let mut file = b"lead".to_vec();
        file.extend(encode(&entries).to_vec());
        let end = file.len() as u64;
        file.extend_from_slice(b"trail");
        std::fs::write(&path, &file).unwrap();
        let tips = TipEntries::open(&path, 4..end).unwrap();
        assert_eq!(tips.len(), 2);
        assert!(tips.lookup(&id(4)).is_none());
        for entry in &entries {
            let found = tips.lookup(&entry.id).unwrap();
            assert_eq!(
                (found.base, found.object_size, found.peers),
                (entry.base, entry.object_size, entry.peers)
            );
            let mut read = tips.read(found).unwrap();
            if read.base.is_some() {
                read.kind = entry.kind;
            }
            assert_eq!(&read, entry);
        }
    }

    #[test]
    fn a_chunk_claiming_more_than_it_holds_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunk");
        let mut chunk = encode(&[TipEntry {
            id: id(1),
            base: None,
            kind: Kind::Blob,
            size: 1,
            object_size: 1,
            peers: 1,
            compressed: vec![7],
        }])
        .to_vec();
        chunk[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        std::fs::write(&path, &chunk).unwrap();
        assert!(TipEntries::open(&path, 0..chunk.len() as u64).is_err());
        // Offsets past the chunk.
        let mut chunk = encode(&[]).to_vec();
        let len = chunk.len();
        chunk[len - 8..].copy_from_slice(&9u64.to_be_bytes());
        std::fs::write(&path, &chunk).unwrap();
        assert!(TipEntries::open(&path, 0..chunk.len() as u64).is_err());
    }
}
