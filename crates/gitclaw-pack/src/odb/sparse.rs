//! A pack file filled on demand: a local file of the pack's full length whose
//! blocks are read from the object store by range the first time anything in
//! them is needed. A fresh instance serving a shallow clone of a big pack so
//! reads the blocks it touches, not the whole pack.
//!
//! The file is mapped by gix-pack like any other; a block not yet read is a
//! hole and reads as zeros, so every reader of the pack's bytes
//! ([`PackHandle`](super::PackHandle)) asks for its range here first.

use std::{ops::Range, os::unix::fs::FileExt, sync::Mutex};

use crate::{PackError, Result};

/// Reads byte ranges of one stored pack (called from blocking threads).
pub trait RangeSource: Send + Sync {
    /// The bytes of `range`, exactly.
    fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>>;

    /// The bytes of each range, in order; a source able to read several at
    /// once overrides this.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        ranges.iter().map(|r| self.read_range(r.clone())).collect()
    }
}

/// Bytes read per block: one ranged read fetches at least this much.
pub const BLOCK_BYTES: u64 = 1 << 20;
/// Blocks read ahead when the block before the one asked for was read too
/// (a sequential pass, such as a full clone copying entries in pack order).
const READ_AHEAD_BLOCKS: u64 = 8;
/// The largest single read when the whole pack is filled.
const FILL_ALL_READ_BYTES: u64 = 16 << 20;

/// A pack file filled on demand; see the module doc.
pub(crate) struct SparsePack {
    source: Box<dyn RangeSource>,
    file: std::fs::File,
    len: u64,
    /// One bit per block: set once the block is in the file.
    present: Mutex<Vec<u64>>,
}

impl SparsePack {
    /// Over `file`, already `len` bytes long (holes where nothing is read yet).
    pub(crate) fn new(source: Box<dyn RangeSource>, file: std::fs::File, len: u64) -> Self {
        let blocks = len.div_ceil(BLOCK_BYTES);
        SparsePack {
            source,
            file,
            len,
            present: Mutex::new(vec![0; usize::try_from(blocks.div_ceil(64)).unwrap_or(0)]),
        }
    }

    fn blocks(&self) -> u64 {
        self.len.div_ceil(BLOCK_BYTES)
    }

    /// Bytes of the pack read into the file so far.
    pub(crate) fn filled_bytes(&self) -> u64 {
        let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.blocks())
            .filter(|b| is_set(&present, *b))
            .map(|b| self.block_range(b))
            .map(|r| r.end - r.start)
            .sum()
    }

    fn block_range(&self, block: u64) -> Range<u64> {
        block * BLOCK_BYTES..((block + 1) * BLOCK_BYTES).min(self.len)
    }

    /// Make sure the bytes of `range` (clamped to the pack) are in the file.
    pub(crate) fn fill(&self, range: Range<u64>) -> Result<()> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return Ok(());
        }
        let (first, last) = (range.start / BLOCK_BYTES, (end - 1) / BLOCK_BYTES);
        let runs = {
            let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            missing_runs(&present, first..last + 1, self.blocks(), READ_AHEAD_BLOCKS)
        };
        self.read_runs(&runs, u64::MAX)
    }

    /// Make sure the whole pack is in the file (for readers of every entry).
    pub(crate) fn fill_all(&self) -> Result<()> {
        let runs = {
            let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            missing_runs(&present, 0..self.blocks(), self.blocks(), 0)
        };
        self.read_runs(&runs, FILL_ALL_READ_BYTES / BLOCK_BYTES)
    }

    /// Read runs of blocks (each split in reads of at most `max_blocks`) into the file.
    fn read_runs(&self, runs: &[Range<u64>], max_blocks: u64) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut reads = Vec::new();
        for run in runs {
            let mut start = run.start;
            while start < run.end {
                let end = run.end.min(start.saturating_add(max_blocks));
                reads.push(start..end);
                start = end;
            }
        }
        let byte_ranges: Vec<Range<u64>> = reads
            .iter()
            .map(|r| self.block_range(r.start).start..self.block_range(r.end - 1).end)
            .collect();
        let data = self.source.read_ranges(&byte_ranges)?;
        for ((blocks, bytes), range) in reads.iter().zip(&data).zip(&byte_ranges) {
            if bytes.len() as u64 != range.end - range.start {
                return Err(PackError::Corrupt(format!(
                    "a ranged read of {}..{} of a pack returned {} bytes",
                    range.start,
                    range.end,
                    bytes.len()
                )));
            }
            self.file
                .write_all_at(bytes, range.start)
                .map_err(|source| PackError::Io {
                    context: "filling a pack read by ranges".into(),
                    source,
                })?;
            let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            for block in blocks.clone() {
                set(&mut present, block);
            }
        }
        Ok(())
    }
}

fn is_set(bits: &[u64], block: u64) -> bool {
    usize::try_from(block / 64)
        .ok()
        .and_then(|word| bits.get(word))
        .is_some_and(|word| word & (1 << (block % 64)) != 0)
}

fn set(bits: &mut [u64], block: u64) {
    if let Some(word) = usize::try_from(block / 64)
        .ok()
        .and_then(|word| bits.get_mut(word))
    {
        *word |= 1 << (block % 64);
    }
}

/// The runs of blocks in `wanted` not in `present`, each extended by up to
/// `read_ahead` missing blocks past `wanted` when it starts right after a
/// present block (of `total`).
fn missing_runs(
    present: &[u64],
    wanted: Range<u64>,
    total: u64,
    read_ahead: u64,
) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for block in wanted.clone() {
        if is_set(present, block) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if run.end == block => run.end += 1,
            _ => runs.push(block..block + 1),
        }
    }
    if let Some(run) = runs.last_mut() {
        let sequential = run.start > 0 && is_set(present, run.start - 1);
        if sequential && run.end == wanted.end {
            let limit = (run.end + read_ahead).min(total);
            while run.end < limit && !is_set(present, run.end) {
                run.end += 1;
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Serves a byte vector, counting what it was asked for.
    struct Bytes {
        data: Vec<u8>,
        reads: AtomicU64,
        read_bytes: AtomicU64,
    }

    impl RangeSource for std::sync::Arc<Bytes> {
        fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.read_bytes
                .fetch_add(range.end - range.start, Ordering::SeqCst);
            Ok(self.data[range.start as usize..range.end as usize].to_vec())
        }
    }

    fn sparse(len: usize) -> (std::sync::Arc<Bytes>, SparsePack, tempfile::NamedTempFile) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let source = std::sync::Arc::new(Bytes {
            data,
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
        });
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(len as u64).unwrap();
        let pack = SparsePack::new(Box::new(source.clone()), file.reopen().unwrap(), len as u64);
        (source, pack, file)
    }

    #[test]
    fn a_range_reads_only_the_blocks_it_touches_and_only_once() {
        let len = 10 * BLOCK_BYTES as usize + 123;
        let (source, pack, file) = sparse(len);
        let at = 3 * BLOCK_BYTES + 10;
        pack.fill(at..at + 100).unwrap();
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), BLOCK_BYTES);
        pack.fill(at + 200..at + 300).unwrap();
        assert_eq!(
            source.reads.load(Ordering::SeqCst),
            1,
            "the block is read once"
        );
        let on_disk = std::fs::read(file.path()).unwrap();
        let block = 3 * BLOCK_BYTES as usize..4 * BLOCK_BYTES as usize;
        assert_eq!(on_disk[block.clone()], source.data[block]);
        assert!(on_disk[..3 * BLOCK_BYTES as usize].iter().all(|b| *b == 0));
        assert_eq!(pack.filled_bytes(), BLOCK_BYTES);
    }

    #[test]
    fn a_sequential_pass_reads_ahead_and_the_last_block_is_short() {
        let len = 20 * BLOCK_BYTES as usize + 7;
        let (source, pack, file) = sparse(len);
        pack.fill(0..10).unwrap();
        pack.fill(BLOCK_BYTES..BLOCK_BYTES + 1).unwrap();
        // Block 1 follows block 0: it and the next READ_AHEAD_BLOCKS come in one read.
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        assert_eq!(pack.filled_bytes(), (2 + READ_AHEAD_BLOCKS) * BLOCK_BYTES);
        pack.fill_all().unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), source.data);
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), len as u64);
        pack.fill(len as u64 - 1..len as u64 + 50).unwrap();
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), len as u64);
    }

    #[test]
    fn a_short_read_is_an_error_and_marks_nothing() {
        struct Short;
        impl RangeSource for Short {
            fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>> {
                Ok(vec![0; (range.end - range.start) as usize / 2])
            }
        }
        let file = tempfile::tempfile().unwrap();
        file.set_len(3 * BLOCK_BYTES).unwrap();
        let pack = SparsePack::new(Box::new(Short), file, 3 * BLOCK_BYTES);
        assert!(matches!(pack.fill(0..10), Err(PackError::Corrupt(_))));
        assert_eq!(pack.filled_bytes(), 0);
    }
}
