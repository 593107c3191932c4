//! A stored file filled on demand: a local file of the stored one's full
//! length whose blocks are read from the object store by range the first time
//! anything in them is needed. A fresh instance serving a shallow clone of a
//! big pack so reads the blocks it touches, not the whole pack; and of a
//! commit-graph, its commits and the index of its tip entries, not the
//! entries a request does not send.
//!
//! The file is mapped by gix-pack (or gix-commitgraph) like any other; a block
//! not yet read is a hole and reads as zeros, so every reader of the file's
//! bytes ([`PackHandle`](super::PackHandle), the tip entries) asks for its
//! range here first.

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
/// Reads in a row, each starting where the one before ended, after which a
/// pass counts as sequential (a full clone copying entries in pack order) and
/// reads ahead: one block, then twice as many each time, up to
/// [`MAX_READ_AHEAD_BLOCKS`]. Requests touching a few neighbouring blocks
/// (a shallow clone) read only those.
const SEQUENTIAL_READS: u32 = 3;
const MAX_READ_AHEAD_BLOCKS: u64 = 16;
/// The largest single read when the whole pack is filled.
const FILL_ALL_READ_BYTES: u64 = 4 << 20;
/// The most bytes read before they are written to the file: reads are asked
/// for in groups this large (the source may make a group's reads at once), so
/// filling a multi-GB pack holds this much, not the pack, in memory.
const GROUP_BYTES: u64 = 16 << 20;
/// The longest single read when [prefetching](SparseFile::prefetch).
const PREFETCH_READ_BYTES: u64 = 4 << 20;

/// A pack file filled on demand; see the module doc.
pub(crate) struct SparseFile {
    source: Box<dyn RangeSource>,
    file: std::fs::File,
    len: u64,
    /// Bytes a block: [`BLOCK_BYTES`] unless made with another size.
    block: u64,
    present: Mutex<Blocks>,
}

/// Which blocks are in the file, and how the last reads went.
struct Blocks {
    /// One bit per block: set once the block is in the file.
    bits: Vec<u64>,
    /// The block after the last read, and how many reads in a row began
    /// where the one before ended.
    next: u64,
    streak: u32,
}

impl Blocks {
    /// Blocks to read past a read starting at `start` (and note it).
    fn read_ahead(&mut self, start: u64) -> u64 {
        self.streak = if start == self.next {
            self.streak.saturating_add(1)
        } else {
            0
        };
        match self.streak.checked_sub(SEQUENTIAL_READS) {
            Some(doublings) => (1u64 << doublings.min(8)).min(MAX_READ_AHEAD_BLOCKS),
            None => 0,
        }
    }
}

impl SparseFile {
    /// A new local file at `path`, `len` bytes of holes, filled from `source`.
    pub(crate) fn create(
        path: &std::path::Path,
        len: u64,
        source: Box<dyn RangeSource>,
    ) -> Result<Self> {
        Self::create_with_blocks(path, len, BLOCK_BYTES, source)
    }

    /// [`Self::create`] with blocks of `block` bytes (a power of two): smaller
    /// for a file read at many scattered places a little at a time.
    pub(crate) fn create_with_blocks(
        path: &std::path::Path,
        len: u64,
        block: u64,
        source: Box<dyn RangeSource>,
    ) -> Result<Self> {
        let io = |context: &'static str| {
            move |source: std::io::Error| PackError::Io {
                context: context.into(),
                source,
            }
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io("creating a file read by ranges"))?;
        file.set_len(len)
            .map_err(io("sizing a file read by ranges"))?;
        Ok(SparseFile::new(source, file, len).with_blocks(block))
    }

    /// Over `file`, already `len` bytes long (holes where nothing is read yet).
    pub(crate) fn new(source: Box<dyn RangeSource>, file: std::fs::File, len: u64) -> Self {
        SparseFile {
            source,
            file,
            len,
            block: BLOCK_BYTES,
            present: Mutex::new(Blocks {
                bits: Vec::new(),
                next: u64::MAX,
                streak: 0,
            }),
        }
        .with_blocks(BLOCK_BYTES)
    }

    /// The same file in blocks of `block` bytes, nothing read yet.
    fn with_blocks(mut self, block: u64) -> Self {
        self.block = block.max(1);
        let words = self.blocks().div_ceil(64);
        self.present
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .bits = vec![0; usize::try_from(words).unwrap_or(0)];
        self
    }

    pub(crate) fn blocks(&self) -> u64 {
        self.len.div_ceil(self.block)
    }

    /// Bytes of the pack read into the file so far.
    pub(crate) fn filled_bytes(&self) -> u64 {
        let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.blocks())
            .filter(|b| is_set(&present.bits, *b))
            .map(|b| self.block_range(b))
            .map(|r| r.end - r.start)
            .sum()
    }

    /// Whether every block is in the file: nothing left to read.
    pub(crate) fn is_complete(&self) -> bool {
        let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.blocks()).all(|b| is_set(&present.bits, b))
    }

    /// Whether every byte of `range` (clamped to the file) is in the file already.
    pub(crate) fn holds(&self, range: Range<u64>) -> bool {
        let end = range.end.min(self.len);
        if range.start >= end {
            return true;
        }
        let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        (range.start / self.block..=(end - 1) / self.block).all(|b| is_set(&present.bits, b))
    }

    fn block_range(&self, block: u64) -> Range<u64> {
        block * self.block..((block + 1) * self.block).min(self.len)
    }

    /// Make sure the bytes of `range` (clamped to the pack) are in the file.
    pub(crate) fn fill(&self, range: Range<u64>) -> Result<()> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return Ok(());
        }
        let (first, last) = (range.start / self.block, (end - 1) / self.block);
        let runs = {
            let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            let mut runs = missing_runs(&present.bits, first..last + 1);
            if let Some(start) = runs.first().map(|r| r.start) {
                let ahead = present.read_ahead(start);
                if let Some(run) = runs.last_mut() {
                    let limit = run.end.saturating_add(ahead).min(self.blocks());
                    while run.end < limit && !is_set(&present.bits, run.end) {
                        run.end += 1;
                    }
                    present.next = run.end;
                }
            }
            runs
        };
        self.read_runs(&runs, u64::MAX)
    }

    /// The bytes of `range` (clamped to the file), read from the store first
    /// where they are not in the file yet.
    pub(crate) fn read(&self, range: Range<u64>) -> Result<Vec<u8>> {
        self.fill(range.clone())?;
        let end = range.end.min(self.len);
        let mut buf = vec![0; usize::try_from(end.saturating_sub(range.start)).unwrap_or(0)];
        self.file
            .read_exact_at(&mut buf, range.start)
            .map_err(|source| PackError::Io {
                context: "reading a file read by ranges".into(),
                source,
            })?;
        Ok(buf)
    }

    /// Make sure the whole pack is in the file (for readers of every entry).
    pub(crate) fn fill_all(&self) -> Result<()> {
        let runs = {
            let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            missing_runs(&present.bits, 0..self.blocks())
        };
        self.read_runs(&runs, (FILL_ALL_READ_BYTES / self.block).max(1))
    }

    /// Make sure the bytes of every range are in the file, the blocks missing
    /// read side by side (as the source allows) rather than one after another
    /// as readers reach them: what a request is about to copy, once it knows.
    /// Does not count as a read for read-ahead.
    pub(crate) fn prefetch(&self, ranges: &[Range<u64>]) -> Result<()> {
        let runs = {
            let present = self.present.lock().unwrap_or_else(|e| e.into_inner());
            let mut missing = vec![0; present.bits.len()];
            for range in ranges {
                let end = range.end.min(self.len);
                if range.start >= end {
                    continue;
                }
                for block in range.start / self.block..=(end - 1) / self.block {
                    if !is_set(&present.bits, block) {
                        set(&mut missing, block);
                    }
                }
            }
            runs_where(0..self.blocks(), |block| is_set(&missing, block))
        };
        self.read_runs(&runs, (PREFETCH_READ_BYTES / self.block).max(1))
    }

    /// Read runs of blocks (each split in reads of at most `max_blocks`) into the file.
    fn read_runs(&self, runs: &[Range<u64>], max_blocks: u64) -> Result<()> {
        let mut reads = Vec::new();
        for run in runs {
            let mut start = run.start;
            while start < run.end {
                let end = run.end.min(start.saturating_add(max_blocks));
                reads.push(start..end);
                start = end;
            }
        }
        // In groups of at most GROUP_BYTES, each written before the next is read.
        let mut group = Vec::new();
        let mut group_bytes = 0;
        for read in reads {
            group_bytes += (read.end - read.start) * self.block;
            group.push(read);
            if group_bytes >= GROUP_BYTES {
                self.read_group(&group)?;
                group.clear();
                group_bytes = 0;
            }
        }
        if !group.is_empty() {
            self.read_group(&group)?;
        }
        Ok(())
    }

    /// Make one group of reads (runs of blocks) and write them into the file.
    fn read_group(&self, reads: &[Range<u64>]) -> Result<()> {
        // A read shorter than a block (the file's last block) starts earlier,
        // so that it is a block long: some stores answer a short range slowly
        // (Garage's small responses wait out the client's delayed ACK, 40 ms
        // each), and the bytes read again are the same bytes.
        let byte_ranges: Vec<Range<u64>> = reads
            .iter()
            .map(|r| self.block_range(r.start).start..self.block_range(r.end - 1).end)
            .map(|r| r.end.saturating_sub(self.block).min(r.start)..r.end)
            .collect();
        let data = self.source.read_ranges(&byte_ranges)?;
        for ((blocks, bytes), range) in reads.iter().zip(&data).zip(&byte_ranges) {
            if bytes.len() as u64 != range.end - range.start {
                return Err(PackError::Corrupt(format!(
                    "a ranged read of {}..{} of a stored file returned {} bytes",
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
                set(&mut present.bits, block);
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

/// The runs of blocks in `wanted` not in `present`.
fn missing_runs(present: &[u64], wanted: Range<u64>) -> Vec<Range<u64>> {
    runs_where(wanted, |block| !is_set(present, block))
}

/// The runs of blocks in `within` for which `pick` holds.
fn runs_where(within: Range<u64>, pick: impl Fn(u64) -> bool) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for block in within.filter(|b| pick(*b)) {
        match runs.last_mut() {
            Some(run) if run.end == block => run.end += 1,
            _ => runs.push(block..block + 1),
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
        /// Calls of `read_ranges`, and the most bytes one call asked for.
        batches: AtomicU64,
        largest_batch: AtomicU64,
    }

    impl RangeSource for std::sync::Arc<Bytes> {
        fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.read_bytes
                .fetch_add(range.end - range.start, Ordering::SeqCst);
            Ok(self.data[range.start as usize..range.end as usize].to_vec())
        }

        fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
            self.batches.fetch_add(1, Ordering::SeqCst);
            let bytes = ranges.iter().map(|r| r.end - r.start).sum();
            self.largest_batch.fetch_max(bytes, Ordering::SeqCst);
            ranges.iter().map(|r| self.read_range(r.clone())).collect()
        }
    }

    fn sparse(len: usize) -> (std::sync::Arc<Bytes>, SparseFile, tempfile::NamedTempFile) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let source = std::sync::Arc::new(Bytes {
            data,
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            largest_batch: AtomicU64::new(0),
        });
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(len as u64).unwrap();
        let pack = SparseFile::new(Box::new(source.clone()), file.reopen().unwrap(), len as u64);
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
    fn neighbouring_blocks_touched_apart_are_read_alone() {
        let len = 20 * BLOCK_BYTES as usize;
        let (source, pack, _file) = sparse(len);
        // Header and trailer at open, then a few blocks near them.
        pack.fill(0..12).unwrap();
        pack.fill(len as u64 - 20..len as u64).unwrap();
        for block in [1, 2, 7, 3] {
            pack.fill(block * BLOCK_BYTES + 5..block * BLOCK_BYTES + 9)
                .unwrap();
        }
        assert_eq!(pack.filled_bytes(), 6 * BLOCK_BYTES, "no read ahead");
        assert_eq!(source.reads.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn a_short_last_block_is_read_a_block_long() {
        let len = 2 * BLOCK_BYTES as usize + 20;
        let (source, pack, file) = sparse(len);
        pack.fill(len as u64 - 20..len as u64).unwrap();
        assert_eq!(source.reads.load(Ordering::SeqCst), 1);
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), BLOCK_BYTES);
        assert_eq!(
            pack.filled_bytes(),
            20,
            "only the last block counts as there"
        );
        let on_disk = std::fs::read(file.path()).unwrap();
        assert_eq!(on_disk[len - 20..], source.data[len - 20..]);
        // The block before is read whole when it is needed.
        pack.fill(BLOCK_BYTES..BLOCK_BYTES + 1).unwrap();
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        assert_eq!(pack.filled_bytes(), BLOCK_BYTES + 20);
        let on_disk = std::fs::read(file.path()).unwrap();
        assert_eq!(
            on_disk[BLOCK_BYTES as usize..],
            source.data[BLOCK_BYTES as usize..]
        );
    }

    #[test]
    fn a_sequential_pass_reads_ahead_and_the_last_block_is_short() {
        let len = 40 * BLOCK_BYTES as usize + 7;
        let (source, pack, file) = sparse(len);
        // Entries copied in pack order: each read begins where the last ended.
        let mut at = 0;
        let mut reads = Vec::new();
        while at < 30 * BLOCK_BYTES {
            let before = pack.filled_bytes();
            pack.fill(at..at + 10).unwrap();
            let read = (pack.filled_bytes() - before) / BLOCK_BYTES;
            if read > 0 {
                reads.push(read);
            }
            at = pack.filled_bytes();
        }
        // One block at a time until the pass is seen to be sequential, then
        // twice as many each time, capped.
        assert_eq!(reads[..SEQUENTIAL_READS as usize], [1, 1, 1]);
        assert_eq!(reads[3..7], [2, 3, 5, 9]);
        assert!(reads[7..].iter().all(|&r| r <= 1 + MAX_READ_AHEAD_BLOCKS));
        assert_eq!(source.reads.load(Ordering::SeqCst), reads.len() as u64);
        pack.fill_all().unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), source.data);
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), len as u64);
        pack.fill(len as u64 - 1..len as u64 + 50).unwrap();
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), len as u64);
    }

    #[test]
    fn a_prefetch_reads_the_missing_blocks_of_every_range_in_one_batch() {
        let len = 12 * BLOCK_BYTES as usize;
        let (source, pack, file) = sparse(len);
        let b = BLOCK_BYTES;
        pack.fill(2 * b + 1..2 * b + 2).unwrap();
        let batches = source.batches.load(Ordering::SeqCst);
        pack.prefetch(&[
            b + 10..b + 20,       // block 1
            2 * b..2 * b + 5,     // block 2, already there
            5 * b + 7..7 * b + 1, // blocks 5 to 7
            9 * b + 3..9 * b + 4, // block 9
            20 * b..21 * b,       // past the end: nothing
        ])
        .unwrap();
        assert_eq!(
            source.batches.load(Ordering::SeqCst),
            batches + 1,
            "one batch"
        );
        // Blocks 1, 5-7 and 9, besides block 2: each block read once.
        assert_eq!(pack.filled_bytes(), 6 * b);
        assert_eq!(source.read_bytes.load(Ordering::SeqCst), 6 * b);
        let on_disk = std::fs::read(file.path()).unwrap();
        for block in [1usize, 2, 5, 6, 7, 9] {
            let at = block * b as usize..(block + 1) * b as usize;
            assert_eq!(on_disk[at.clone()], source.data[at], "block {block}");
        }
        // Nothing more when everything asked for is there.
        pack.prefetch(&[b..2 * b, 9 * b..10 * b]).unwrap();
        assert_eq!(source.batches.load(Ordering::SeqCst), batches + 1);
        // A prefetch is no step of a sequential pass: the next read reads no further.
        pack.fill(10 * b..10 * b + 1).unwrap();
        assert_eq!(pack.filled_bytes(), 7 * b);
    }

    #[test]
    fn filling_a_whole_file_holds_one_group_of_reads_at_a_time() {
        let len = 40 * BLOCK_BYTES as usize + 3;
        let (source, pack, file) = sparse(len);
        pack.fill(len as u64 - 1..len as u64).unwrap();
        assert!(!pack.is_complete(), "the last block alone is not the file");
        pack.fill_all().unwrap();
        assert!(pack.is_complete());
        assert_eq!(std::fs::read(file.path()).unwrap(), source.data);
        assert!(source.batches.load(Ordering::SeqCst) >= 3);
        assert!(source.largest_batch.load(Ordering::SeqCst) <= GROUP_BYTES);
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
        let pack = SparseFile::new(Box::new(Short), file, 3 * BLOCK_BYTES);
        assert!(matches!(pack.fill(0..10), Err(PackError::Corrupt(_))));
        assert_eq!(pack.filled_bytes(), 0);
    }
}
