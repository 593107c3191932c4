//! A pack order compaction recorded in the pack's commit-graph, read where it
//! lies a block at a time as requests reach its places (see
//! `commit_graph::PACK_ORDER_CHUNK_ID`). Building the order in memory goes
//! through every entry of the pack — tens of ms at millions of objects, most
//! of a first `tree:0` clone, which reads the first few hundred entries of
//! the compacted pack; read in place, such a request reads one block of
//! each table.

use std::{os::unix::fs::FileExt, path::PathBuf, sync::OnceLock};

use super::order::PackOrder;

/// Entries a block of a table: 512 KiB of keys, 256 KiB of places.
const BLOCK_ENTRIES: usize = 1 << 16;

/// A number a table holds, stored big-endian.
pub(crate) trait Entry: Copy + Send + Sync + 'static {
    const BYTES: usize;
    fn from_be(bytes: &[u8]) -> Self;
}

impl Entry for u32 {
    const BYTES: usize = 4;
    fn from_be(b: &[u8]) -> Self {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Entry for u64 {
    const BYTES: usize = 8;
    fn from_be(b: &[u8]) -> Self {
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// A block's entries once read; `None` when it could not be read or failed
/// its check.
type Block<T> = OnceLock<Option<Box<[T]>>>;

/// A table of numbers in a file held open, each block read on first need and
/// then kept.
pub(crate) struct BlockTable<T> {
    file: std::fs::File,
    /// Where the first entry lies in the file.
    start: u64,
    count: u32,
    block_entries: usize,
    blocks: Box<[Block<T>]>,
}

impl<T: Entry> BlockTable<T> {
    /// The `count` entries from `start` in `file`.
    pub(crate) fn new(file: std::fs::File, start: u64, count: u32) -> Self {
        Self::with_blocks_of(file, start, count, BLOCK_ENTRIES)
    }

    pub(super) fn with_blocks_of(
        file: std::fs::File,
        start: u64,
        count: u32,
        block_entries: usize,
    ) -> Self {
        let blocks = (0..(count as usize).div_ceil(block_entries))
            .map(|_| OnceLock::new())
            .collect();
        BlockTable {
            file,
            start,
            count,
            block_entries,
            blocks,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// The entry at `pos`: `None` past the table, or when its block cannot be
    /// read or fails `check` (given the block's entries).
    pub(crate) fn get(&self, pos: usize, check: impl Fn(&[T]) -> bool) -> Option<T> {
        let block = pos / self.block_entries;
        let entries = self
            .blocks
            .get(block)?
            .get_or_init(|| self.read(block).filter(|entries| check(entries)))
            .as_ref()?;
        entries.get(pos % self.block_entries).copied()
    }

    #[cfg(test)]
    fn blocks_read(&self) -> usize {
        self.blocks.iter().filter(|b| b.get().is_some()).count()
    }

    fn read(&self, block: usize) -> Option<Box<[T]>> {
        let first = block * self.block_entries;
        let len = self.block_entries.min(self.len().checked_sub(first)?);
        let mut bytes = vec![0u8; len * T::BYTES];
        let at = self.start + (first * T::BYTES) as u64;
        if let Err(err) = self.file.read_exact_at(&mut bytes, at) {
            tracing::warn!(%err, at, "reading a block of a recorded pack order");
            return None;
        }
        Some(bytes.chunks_exact(T::BYTES).map(T::from_be).collect())
    }
}

/// The tables of a recorded pack order, as its commit-graph holds them.
pub(crate) struct RecordedTables {
    /// The pack they are of.
    pub(crate) pack: gix_hash::ObjectId,
    /// Each entry in pack order: `offset << 32 | index position`.
    pub(crate) keys: BlockTable<u64>,
    /// Each index position's place in pack order.
    pub(crate) places: BlockTable<u32>,
}

/// A pack's order as compaction recorded it: its entries in pack order (the
/// keys the order keeps in memory, `offset << 32 | index position`) and each
/// index position's place in that order. Each block is checked as it is read
/// (keys strictly rising, every index position and place within the pack);
/// a block that cannot be read or fails is answered from the order sorted
/// from the pack's index instead, built then.
pub(crate) struct RecordedOrder {
    keys: BlockTable<u64>,
    places: BlockTable<u32>,
    /// The pack's index, for that fallback.
    index_path: PathBuf,
    sorted: OnceLock<Option<PackOrder>>,
}

impl RecordedOrder {
    /// The order of a pack of `n` entries whose index is at `index_path`, from
    /// its two tables; `None` unless both hold `n` entries.
    pub(crate) fn new(
        n: u32,
        keys: BlockTable<u64>,
        places: BlockTable<u32>,
        index_path: PathBuf,
    ) -> Option<Self> {
        (keys.count == n && places.count == n).then_some(RecordedOrder {
            keys,
            places,
            index_path,
            sorted: OnceLock::new(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// `(offset, index)` of the entry at place `pos`.
    pub(crate) fn get(&self, pos: usize) -> Option<(u64, u32)> {
        let n = self.len() as u64;
        let rising = |keys: &[u64]| {
            keys.windows(2).all(|pair| pair[0] >> 32 < pair[1] >> 32)
                && keys
                    .iter()
                    .all(|key| key & u64::from(u32::MAX) < n && key >> 32 > 0)
        };
        match self.keys.get(pos, rising) {
            Some(key) => Some((key >> 32, key as u32)),
            None if pos < self.len() => self.fallback()?.get(pos),
            None => None,
        }
    }

    /// The place in pack order of the entry at index position `index`.
    pub(crate) fn place(&self, index: u32) -> Option<u32> {
        let n = self.len() as u32;
        let within = |places: &[u32]| places.iter().all(|&pos| pos < n);
        match self.places.get(index as usize, within) {
            Some(pos) => Some(pos),
            None if index < n => self.fallback()?.place(index),
            None => None,
        }
    }

    /// How many blocks of the keys and of the places have been read.
    #[cfg(test)]
    pub(super) fn blocks_read(&self) -> (usize, usize) {
        (self.keys.blocks_read(), self.places.blocks_read())
    }

    /// The order sorted from the pack's index, built the first time a block
    /// of the record is found unreadable or wrong.
    fn fallback(&self) -> Option<&PackOrder> {
        self.sorted
            .get_or_init(|| {
                tracing::warn!(index = %self.index_path.display(), "a block of the recorded pack order cannot be read or is not the pack's order; sorting the index's offsets");
                match gix_pack::index::File::at(&self.index_path, gix_hash::Kind::Sha1) {
                    Ok(index) if index.num_objects() as usize == self.len() => {
                        Some(PackOrder::new(index.num_objects(), |i| {
                            index.pack_offset_at_index(i)
                        }))
                    }
                    Ok(_) => None,
                    Err(err) => {
                        tracing::warn!(%err, "opening the pack's index to sort its offsets");
                        None
                    }
                }
            })
            .as_ref()
    }
}
