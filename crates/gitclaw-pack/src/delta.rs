//! Git's delta format: encode a target as copy/insert instructions against a base,
//! and apply such a delta.
//!
//! Format (as `git/diff-delta.c` writes it): the base size and the result size as
//! little-endian base-128 varints, then instructions — `0xxxxxxx` inserts the next
//! 1..=127 literal bytes, `1ooossss` copies from the base, its offset and size
//! given by the bytes whose bits are set (a size of 0 means 0x10000).
//!
//! The encoder indexes the base in 16-byte blocks by a polynomial hash and scans
//! the target byte by byte with the same hash rolled along, extending every
//! candidate match forwards and backwards and taking the longest. Not here: choosing which objects to delta against which
//! (see the writer's window search).

/// Block size of the base index and the shortest match worth a copy.
const BLOCK: usize = 16;
/// Candidates kept per hash bucket, so repetitive bases stay cheap.
const BUCKET_LIMIT: usize = 64;
/// A match this long ends the look at further candidates (git's own cut-off):
/// longer ones rarely exist, and comparing each would cost more than it saves.
const GOOD_ENOUGH: usize = 4096;
/// Filter bits per hash bucket, as a power of two (16): few enough for a base's
/// filter to stay in the first-level cache, enough that a position the base does
/// not hold rarely passes it.
const FILTER_PER_BUCKET_LOG: u32 = 4;
/// Largest size one copy instruction carries (git's own limit, for old readers).
const MAX_COPY: usize = 0x10000;

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = *data.get(*pos)?;
        *pos += 1;
        if shift > 63 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
}

/// Multiplier of the polynomial block hash (odd, so no information is lost).
const HASH_MUL: u32 = 0x0100_0193;
/// `HASH_MUL^(BLOCK-1)`: the weight of the byte leaving the rolling window.
const HASH_OUT: u32 = {
    let mut p = 1u32;
    let mut i = 1;
    while i < BLOCK {
        p = p.wrapping_mul(HASH_MUL);
        i += 1;
    }
    p
};

/// Polynomial hash of one block, mixed ([`mix`]); [`roll`] moves the unmixed hash
/// one byte along in O(1).
fn block_hash(block: &[u8]) -> u32 {
    block.iter().fold(0u32, |h, &b| {
        h.wrapping_mul(HASH_MUL).wrapping_add(u32::from(b))
    })
}

fn roll(h: u32, leaving: u8, entering: u8) -> u32 {
    h.wrapping_sub(u32::from(leaving).wrapping_mul(HASH_OUT))
        .wrapping_mul(HASH_MUL)
        .wrapping_add(u32::from(entering))
}

/// The hash the index keys blocks by: the polynomial hash times an odd constant,
/// so its top bits (the filter's) depend on every byte of the block. The low bits
/// of a polynomial hash depend on the low bits of the bytes only.
#[inline]
fn mix(hash: u32) -> u32 {
    hash.wrapping_mul(0x85EB_CA77)
}

/// The block hash of every position of a target, worked out once and scanned
/// against each base the target is tried with (four bytes per byte of target),
/// instead of rolled along again for each of them.
#[derive(Debug, Default)]
pub struct TargetHashes {
    hashes: Vec<u32>,
    target_len: usize,
}

impl TargetHashes {
    /// Work out the hashes of `target`, reusing this value's memory.
    pub fn compute(&mut self, target: &[u8]) {
        self.hashes.clear();
        self.target_len = target.len();
        if target.len() < BLOCK {
            return;
        }
        self.hashes.reserve(target.len() - BLOCK + 1);
        let mut h = block_hash(&target[..BLOCK]);
        self.hashes.push(mix(h));
        for i in 1..=target.len() - BLOCK {
            h = roll(h, target[i - 1], target[i + BLOCK - 1]);
            self.hashes.push(mix(h));
        }
    }
}

/// Where a scan of the target finds its block hashes.
trait Scan {
    /// The (mixed) hash of the block at `i`.
    fn hash_at(&mut self, i: usize) -> u32;
    /// The first position in `from..end` whose block the base may hold, or `end`.
    fn next_candidate(&mut self, index: &BaseIndex, from: usize, end: usize) -> usize;
}

impl Scan for &TargetHashes {
    fn hash_at(&mut self, i: usize) -> u32 {
        self.hashes[i]
    }

    fn next_candidate(&mut self, index: &BaseIndex, from: usize, end: usize) -> usize {
        // The costliest loop of the delta search: most positions of a target that
        // shares little with the base end here on one filter bit.
        let shift = 32 - (index.bits + FILTER_PER_BUCKET_LOG);
        self.hashes[from..end]
            .iter()
            .position(|&h| {
                let bit = (h >> shift) as usize;
                index.filter[bit / 64] & (1 << (bit % 64)) != 0
            })
            .map_or(end, |k| from + k)
    }
}

/// The hashes rolled along the target as the scan goes (no memory per byte).
struct Rolling<'a> {
    target: &'a [u8],
    /// The position `hash` is of (`usize::MAX` before the first).
    at: usize,
    hash: u32,
}

impl Rolling<'_> {
    fn seek(&mut self, i: usize) -> u32 {
        if i != self.at {
            self.hash = if self.at != usize::MAX && i == self.at + 1 {
                roll(self.hash, self.target[i - 1], self.target[i + BLOCK - 1])
            } else {
                block_hash(&self.target[i..i + BLOCK])
            };
            self.at = i;
        }
        mix(self.hash)
    }
}

impl Scan for Rolling<'_> {
    fn hash_at(&mut self, i: usize) -> u32 {
        self.seek(i)
    }

    fn next_candidate(&mut self, index: &BaseIndex, from: usize, end: usize) -> usize {
        (from..end)
            .find(|&i| {
                let h = self.seek(i);
                index.may_hold(h)
            })
            .unwrap_or(end)
    }
}

/// The index of a base's blocks, without the base itself: built once per base
/// and used for every target tried against it.
pub struct BaseIndex {
    /// Bits of the bucket number (taken from the top of a mixed hash).
    bits: u32,
    /// `starts[b]..starts[b + 1]` are bucket `b`'s blocks in `blocks`.
    starts: Vec<u32>,
    blocks: Vec<Block>,
    /// One bit per hash value class (sixteen per bucket, from other bits of the
    /// hash): set when some block of the base hashes into it. Most positions of a
    /// target that shares little with the base are passed over on this alone,
    /// without reading the buckets.
    filter: Vec<u64>,
    base_len: usize,
}

/// One indexed block of the base: its whole hash, so that candidates of the same
/// bucket with another hash are passed over without touching the base, and where
/// it starts.
#[derive(Debug, Clone, Copy, Default)]
struct Block {
    hash: u32,
    offset: u32,
}

impl BaseIndex {
    pub fn new(base: &[u8]) -> Self {
        let blocks = base.len() / BLOCK;
        let size = blocks.next_power_of_two().max(2);
        let bits = size.trailing_zeros();
        let hashes: Vec<u32> = (0..blocks)
            .map(|i| mix(block_hash(&base[i * BLOCK..(i + 1) * BLOCK])))
            .collect();
        let mut counts = vec![0u32; size + 1];
        for &h in &hashes {
            let c = &mut counts[bucket(h, bits)];
            if (*c as usize) < BUCKET_LIMIT {
                *c += 1;
            }
        }
        let mut starts = Vec::with_capacity(size + 1);
        let mut total = 0u32;
        for &c in &counts[..size] {
            starts.push(total);
            total += c;
        }
        starts.push(total);
        let mut filter = vec![0u64; (size << FILTER_PER_BUCKET_LOG).div_ceil(64)];
        for &h in &hashes {
            let bit = filter_bit(h, bits + FILTER_PER_BUCKET_LOG);
            filter[bit / 64] |= 1 << (bit % 64);
        }
        let mut entries = vec![Block::default(); total as usize];
        let mut fill = vec![0u32; size];
        // Later blocks first, so the kept candidates favour the start of the base.
        for i in (0..blocks).rev() {
            let hash = hashes[i];
            let b = bucket(hash, bits);
            let have = fill[b];
            if starts[b] + have < starts[b + 1] {
                entries[(starts[b] + have) as usize] = Block {
                    hash,
                    offset: (i * BLOCK) as u32,
                };
                fill[b] = have + 1;
            }
        }
        BaseIndex {
            bits,
            starts,
            blocks: entries,
            filter,
            base_len: base.len(),
        }
    }

    /// Whether some block of the base may have this hash (no false "no").
    #[inline]
    fn may_hold(&self, hash: u32) -> bool {
        let bit = filter_bit(hash, self.bits + FILTER_PER_BUCKET_LOG);
        self.filter[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn candidates(&self, hash: u32) -> &[Block] {
        let b = bucket(hash, self.bits);
        &self.blocks[self.starts[b] as usize..self.starts[b + 1] as usize]
    }

    /// Encode `target` against `base` (the bytes this index was built from).
    /// Returns `None` when the delta would exceed `max_size` bytes (not worth it).
    pub fn encode(&self, base: &[u8], target: &[u8], max_size: usize) -> Option<Vec<u8>> {
        let rolling = Rolling {
            target,
            at: usize::MAX,
            hash: 0,
        };
        self.encode_with(base, target, rolling, max_size)
    }

    /// [`BaseIndex::encode`] with the target's hashes worked out beforehand
    /// ([`TargetHashes::compute`] of this `target`): the cheaper way to try one
    /// target against many bases.
    pub fn encode_hashed(
        &self,
        base: &[u8],
        target: &[u8],
        hashes: &TargetHashes,
        max_size: usize,
    ) -> Option<Vec<u8>> {
        assert_eq!(
            hashes.target_len,
            target.len(),
            "the hashes belong to another target"
        );
        self.encode_with(base, target, hashes, max_size)
    }

    fn encode_with(
        &self,
        base: &[u8],
        target: &[u8],
        mut scan: impl Scan,
        max_size: usize,
    ) -> Option<Vec<u8>> {
        assert_eq!(
            base.len(),
            self.base_len,
            "the index belongs to another base"
        );
        let mut out = Vec::with_capacity((target.len() / 4).min(max_size) + 16);
        write_varint(&mut out, base.len() as u64);
        write_varint(&mut out, target.len() as u64);
        let mut literal_start = 0usize;
        let mut i = 0usize;
        // Positions a block may start at.
        let positions = (target.len() + 1).saturating_sub(BLOCK);
        while i < positions {
            // Past `stop` the literal run waiting to be written alone would take
            // the delta over the limit.
            let stop = literal_start
                .saturating_add(max_size)
                .saturating_add(1)
                .saturating_sub(out.len())
                .min(positions);
            i = scan.next_candidate(self, i.min(stop), stop);
            if i == stop {
                if stop < positions {
                    return None;
                }
                break;
            }
            let hash = scan.hash_at(i);
            let mut best_len = 0usize;
            let mut best_src = 0usize;
            let mut best_back = 0usize;
            for block in self.candidates(hash) {
                if block.hash != hash {
                    continue;
                }
                let src = block.offset as usize;
                let forward = common_prefix(&base[src..], &target[i..]);
                if forward < BLOCK {
                    continue;
                }
                // Extend backwards into bytes not yet emitted.
                let back = (1..=src.min(i - literal_start))
                    .take_while(|k| base[src - k] == target[i - k])
                    .count();
                if forward + back > best_len {
                    best_len = forward + back;
                    best_src = src;
                    best_back = back;
                }
                if forward >= GOOD_ENOUGH {
                    break;
                }
            }
            if best_len >= BLOCK {
                let start = i - best_back;
                emit_inserts(&mut out, &target[literal_start..start]);
                emit_copies(&mut out, best_src - best_back, best_len);
                i = start + best_len;
                literal_start = i;
                if out.len() > max_size {
                    return None;
                }
            } else {
                i += 1;
            }
            // Give up early once what is written and the literal run waiting to be
            // are past the limit.
            if out.len() + (i - literal_start) > max_size {
                return None;
            }
        }
        emit_inserts(&mut out, &target[literal_start..]);
        (out.len() <= max_size).then_some(out)
    }
}

/// The filter bit of a (mixed) block hash, of `bits` bits: its top bits, where the
/// bucket number is from a second multiplicative mix.
#[inline]
fn filter_bit(hash: u32, bits: u32) -> usize {
    (hash >> (32 - bits)) as usize
}

/// How many leading bytes `a` and `b` share, compared eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_le_bytes(x.try_into().expect("eight bytes"));
        let y = u64::from_le_bytes(y.try_into().expect("eight bytes"));
        let diff = x ^ y;
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a[i..]
        .iter()
        .zip(&b[i..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Bucket number of a (mixed) block hash: the top `bits` of a second
/// multiplicative mix, so it is not the filter bit again.
fn bucket(hash: u32, bits: u32) -> usize {
    (hash.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

/// An index of a base for repeated delta encoding against it.
pub struct DeltaIndex<'a> {
    base: &'a [u8],
    index: BaseIndex,
}

impl<'a> DeltaIndex<'a> {
    pub fn new(base: &'a [u8]) -> Self {
        DeltaIndex {
            base,
            index: BaseIndex::new(base),
        }
    }

    /// Encode `target` against the base. Returns `None` when the delta would exceed
    /// `max_size` bytes (not worth it).
    pub fn encode(&self, target: &[u8], max_size: usize) -> Option<Vec<u8>> {
        self.index.encode(self.base, target, max_size)
    }
}

fn emit_inserts(out: &mut Vec<u8>, mut data: &[u8]) {
    while !data.is_empty() {
        let n = data.len().min(127);
        out.push(n as u8);
        out.extend_from_slice(&data[..n]);
        data = &data[n..];
    }
}

fn emit_copies(out: &mut Vec<u8>, mut offset: usize, mut len: usize) {
    while len > 0 {
        let n = len.min(MAX_COPY);
        let mut op = 0x80u8;
        let at = out.len();
        out.push(0);
        for (bit, shift) in [(0x01u8, 0), (0x02, 8), (0x04, 16), (0x08, 24)] {
            let byte = ((offset as u64) >> shift) as u8;
            if byte != 0 {
                op |= bit;
                out.push(byte);
            }
        }
        let size = if n == MAX_COPY { 0 } else { n };
        for (bit, shift) in [(0x10u8, 0), (0x20, 8), (0x40, 16)] {
            let byte = (size >> shift) as u8;
            if byte != 0 {
                op |= bit;
                out.push(byte);
            }
        }
        out[at] = op;
        offset += n;
        len -= n;
    }
}

/// Encode `target` against `base` in one go.
pub fn encode(base: &[u8], target: &[u8]) -> Vec<u8> {
    DeltaIndex::new(base)
        .encode(target, usize::MAX)
        .unwrap_or_default()
}

/// Why a delta cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeltaError {
    #[error("delta header is truncated")]
    Header,
    #[error("delta expects a base of {expected} bytes, got {actual}")]
    BaseSize { expected: u64, actual: usize },
    #[error("delta result size {0} exceeds the limit")]
    TooLarge(u64),
    #[error("delta instruction at byte {0} is malformed or points outside the base")]
    Instruction(usize),
    #[error("delta produced {actual} bytes, its header says {expected}")]
    ResultSize { expected: u64, actual: usize },
}

/// Apply `delta` to `base`; the result may be at most `max_result` bytes.
pub fn apply(base: &[u8], delta: &[u8], max_result: u64) -> Result<Vec<u8>, DeltaError> {
    let mut pos = 0;
    let base_size = read_varint(delta, &mut pos).ok_or(DeltaError::Header)?;
    let result_size = read_varint(delta, &mut pos).ok_or(DeltaError::Header)?;
    if base_size != base.len() as u64 {
        return Err(DeltaError::BaseSize {
            expected: base_size,
            actual: base.len(),
        });
    }
    if result_size > max_result {
        return Err(DeltaError::TooLarge(result_size));
    }
    let mut out = Vec::with_capacity(result_size as usize);
    while pos < delta.len() {
        let at = pos;
        let op = delta[pos];
        pos += 1;
        if op & 0x80 != 0 {
            let mut offset = 0usize;
            let mut size = 0usize;
            for (bit, shift) in [(0x01u8, 0), (0x02, 8), (0x04, 16), (0x08, 24)] {
                if op & bit != 0 {
                    offset |=
                        usize::from(*delta.get(pos).ok_or(DeltaError::Instruction(at))?) << shift;
                    pos += 1;
                }
            }
            for (bit, shift) in [(0x10u8, 0), (0x20, 8), (0x40, 16)] {
                if op & bit != 0 {
                    size |=
                        usize::from(*delta.get(pos).ok_or(DeltaError::Instruction(at))?) << shift;
                    pos += 1;
                }
            }
            if size == 0 {
                size = MAX_COPY;
            }
            let chunk = offset
                .checked_add(size)
                .and_then(|end| base.get(offset..end))
                .ok_or(DeltaError::Instruction(at))?;
            if (out.len() + chunk.len()) as u64 > result_size {
                return Err(DeltaError::Instruction(at));
            }
            out.extend_from_slice(chunk);
        } else if op != 0 {
            let n = usize::from(op);
            let chunk = delta.get(pos..pos + n).ok_or(DeltaError::Instruction(at))?;
            if (out.len() + n) as u64 > result_size {
                return Err(DeltaError::Instruction(at));
            }
            out.extend_from_slice(chunk);
            pos += n;
        } else {
            return Err(DeltaError::Instruction(at));
        }
    }
    if out.len() as u64 != result_size {
        return Err(DeltaError::ResultSize {
            expected: result_size,
            actual: out.len(),
        });
    }
    Ok(out)
}

/// A delta's instructions checked as its bytes arrive, piece by piece, with
/// no base at hand: they must make exactly the result its header claims, each
/// copy within the base its header claims (as [`apply`] requires). What a
/// reader allocates for a delta's result before applying it is then what the
/// delta makes, not a number a client wrote.
pub(crate) struct DeltaSizes {
    state: Step,
    base_size: u64,
    result_size: u64,
    /// Bytes the instructions so far make, and bytes of the delta seen.
    made: u64,
    seen: usize,
    /// Where the instruction being read began.
    op_at: usize,
    error: Option<DeltaError>,
}

#[derive(Clone, Copy)]
enum Step {
    /// Reading the header's base size, then its result size (value, shift).
    BaseSize(u64, u32),
    ResultSize(u64, u32),
    /// At the next instruction.
    Op,
    /// Reading a copy's argument bytes: the bits of `op` still to read.
    Copy {
        bits: u8,
        offset: u64,
        size: u64,
    },
    /// Inside an insert's literal bytes: how many remain.
    Insert(u64),
}

impl DeltaSizes {
    pub(crate) fn new() -> Self {
        DeltaSizes {
            state: Step::BaseSize(0, 0),
            base_size: 0,
            result_size: 0,
            made: 0,
            seen: 0,
            op_at: 0,
            error: None,
        }
    }

    /// The next bytes of the delta.
    pub(crate) fn feed(&mut self, mut piece: &[u8]) {
        while self.error.is_none() && !piece.is_empty() {
            if let Step::Insert(left) = self.state {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(piece.len());
                piece = &piece[n..];
                self.seen += n;
                let left = left - n as u64;
                self.state = if left == 0 {
                    Step::Op
                } else {
                    Step::Insert(left)
                };
                continue;
            }
            let byte = piece[0];
            piece = &piece[1..];
            match self.step(byte) {
                Ok(next) => self.state = next,
                Err(error) => self.error = Some(error),
            }
            self.seen += 1;
        }
    }

    /// The state after one more byte.
    fn step(&mut self, byte: u8) -> Result<Step, DeltaError> {
        let varint = |value: u64, shift: u32| -> Result<(u64, bool), DeltaError> {
            let value = value
                | u64::from(byte & 0x7f)
                    .checked_shl(shift)
                    .ok_or(DeltaError::Header)?;
            Ok((value, byte & 0x80 == 0))
        };
        Ok(match self.state {
            Step::BaseSize(value, shift) => match varint(value, shift)? {
                (value, true) => {
                    self.base_size = value;
                    Step::ResultSize(0, 0)
                }
                (value, false) => Step::BaseSize(value, shift + 7),
            },
            Step::ResultSize(value, shift) => match varint(value, shift)? {
                (value, true) => {
                    self.result_size = value;
                    Step::Op
                }
                (value, false) => Step::ResultSize(value, shift + 7),
            },
            Step::Op => {
                self.op_at = self.seen;
                match byte {
                    0 => return Err(DeltaError::Instruction(self.seen)),
                    op if op & 0x80 != 0 => self.copy(op & 0x7f, 0, 0)?,
                    n => {
                        self.make(u64::from(n))?;
                        Step::Insert(u64::from(n))
                    }
                }
            }
            Step::Copy { bits, offset, size } => {
                // The lowest bit still set names what this byte is.
                let bit = bits.trailing_zeros();
                let (offset, size) = match bit {
                    0..=3 => (offset | u64::from(byte) << (8 * bit), size),
                    _ => (offset, size | u64::from(byte) << (8 * (bit - 4))),
                };
                self.copy(bits & (bits - 1), offset, size)?
            }
            // One literal byte (`feed` skips runs of them at once).
            Step::Insert(0 | 1) => Step::Op,
            Step::Insert(left) => Step::Insert(left - 1),
        })
    }

    /// A copy with `bits` of its arguments still to read.
    fn copy(&mut self, bits: u8, offset: u64, size: u64) -> Result<Step, DeltaError> {
        if bits != 0 {
            return Ok(Step::Copy { bits, offset, size });
        }
        let size = if size == 0 { MAX_COPY as u64 } else { size };
        if offset + size > self.base_size {
            return Err(DeltaError::Instruction(self.op_at));
        }
        self.make(size)?;
        Ok(Step::Op)
    }

    fn make(&mut self, bytes: u64) -> Result<(), DeltaError> {
        self.made = self.made.saturating_add(bytes);
        match self.made > self.result_size {
            true => Err(DeltaError::Instruction(self.op_at)),
            false => Ok(()),
        }
    }

    /// The result size the delta's header claims, once the header is read.
    pub(crate) fn claimed_result(&self) -> Option<u64> {
        match self.state {
            Step::BaseSize(..) | Step::ResultSize(..) => None,
            _ => Some(self.result_size),
        }
    }

    /// The delta's base and result sizes, once all of it is seen.
    pub(crate) fn finish(self) -> Result<(u64, u64), DeltaError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        match self.state {
            Step::Op if self.made == self.result_size => Ok((self.base_size, self.result_size)),
            Step::Op => Err(DeltaError::ResultSize {
                expected: self.result_size,
                actual: usize::try_from(self.made).unwrap_or(usize::MAX),
            }),
            Step::BaseSize(..) | Step::ResultSize(..) => Err(DeltaError::Header),
            Step::Copy { .. } | Step::Insert(_) => Err(DeltaError::Instruction(self.op_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn similar_texts_give_small_deltas() {
        let base: Vec<u8> = (0..2000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut target = base.clone();
        target.splice(5000..5000, b"an inserted line\n".iter().copied());
        target.truncate(target.len() - 300);
        let delta = encode(&base, &target);
        assert!(delta.len() < 64, "delta of {} bytes", delta.len());
        assert_eq!(apply(&base, &delta, u64::MAX).unwrap(), target);
    }

    #[test]
    fn common_prefix_counts_shared_leading_bytes() {
        let a = b"0123456789abcdefXYZ";
        for len in 0..a.len() {
            let mut b = a[..len].to_vec();
            b.extend_from_slice(b"!!!!!!!!!!!!!!!!!!!!");
            assert_eq!(common_prefix(a, &b), len);
            assert_eq!(common_prefix(&b, a), len);
        }
        assert_eq!(common_prefix(a, a), a.len());
        assert_eq!(common_prefix(a, &a[..5]), 5);
        assert_eq!(common_prefix(b"", a), 0);
    }

    #[test]
    fn long_copies_are_split() {
        let base: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let delta = encode(&base, &base);
        assert_eq!(apply(&base, &delta, u64::MAX).unwrap(), base);
    }

    #[test]
    fn malformed_deltas_are_errors() {
        let base = b"0123456789abcdef0123456789abcdef".to_vec();
        assert_eq!(apply(&base, &[], 100), Err(DeltaError::Header));
        assert!(matches!(
            apply(&base, &[5, 5], 100),
            Err(DeltaError::BaseSize { .. })
        ));
        // Copy past the end of the base.
        assert!(matches!(
            apply(&base, &[32, 10, 0x91, 30, 10], 100),
            Err(DeltaError::Instruction(2))
        ));
        // Result larger than its header says.
        assert!(matches!(
            apply(&base, &[32, 2, 3, b'a', b'b', b'c'], 100),
            Err(DeltaError::Instruction(2))
        ));
        assert!(matches!(
            apply(&base, &[32, 200, 1], 100),
            Err(DeltaError::TooLarge(200))
        ));
    }

    fn mutated() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        (
            proptest::collection::vec(any::<u8>(), 0..3000),
            proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..20),
        )
            .prop_map(|(base, edits)| {
                let mut target = base.clone();
                for (at, byte, kind) in edits {
                    let at = if target.is_empty() {
                        0
                    } else {
                        at % target.len()
                    };
                    match kind {
                        0 => target.insert(at, byte),
                        1 if !target.is_empty() => {
                            target.remove(at);
                        }
                        _ if !target.is_empty() => target[at] = byte,
                        _ => target.push(byte),
                    }
                }
                (base, target)
            })
    }

    proptest! {
        /// Encode then apply gives the target back, for related and unrelated inputs.
        #[test]
        fn encode_apply_round_trip((base, target) in mutated(), other in proptest::collection::vec(any::<u8>(), 0..500)) {
            prop_assert_eq!(apply(&base, &encode(&base, &target), u64::MAX).unwrap(), target);
            prop_assert_eq!(apply(&base, &encode(&base, &other), u64::MAX).unwrap(), other);
        }

        /// A target's hashes worked out beforehand give the very delta the rolled
        /// ones give, within the same limits (a delta or `None` alike), and one
        /// `TargetHashes` serves target after target.
        #[test]
        fn hashes_worked_out_beforehand_give_the_same_delta(
            (base, target) in mutated(),
            other in proptest::collection::vec(any::<u8>(), 0..500),
            limit in 0usize..3000,
        ) {
            let index = BaseIndex::new(&base);
            let mut hashes = TargetHashes::default();
            for t in [&target, &other] {
                hashes.compute(t);
                for max in [limit, usize::MAX] {
                    let hashed = index.encode_hashed(&base, t, &hashes, max);
                    prop_assert_eq!(&hashed, &index.encode(&base, t, max));
                    if let Some(delta) = hashed {
                        prop_assert!(delta.len() <= max);
                        prop_assert_eq!(&apply(&base, &delta, u64::MAX).unwrap(), t);
                    }
                }
            }
        }

        /// Applying arbitrary bytes never panics.
        #[test]
        fn apply_never_panics(base in proptest::collection::vec(any::<u8>(), 0..100), delta in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = apply(&base, &delta, 1 << 20);
        }

        /// Checked piece by piece with no base, a delta is accepted exactly
        /// when applying it to a base of the size it claims succeeds: for
        /// deltas the encoder writes, and for arbitrary bytes (some of them
        /// well-formed headers before anything).
        #[test]
        fn sizes_checked_in_pieces_agree_with_applying(
            (base, target) in mutated(),
            noise in proptest::collection::vec(any::<u8>(), 0..200),
            header in (0u64..300, 0u64..300),
            cuts in proptest::collection::vec(1usize..40, 1..20),
        ) {
            let in_pieces = |delta: &[u8]| {
                let mut sizes = DeltaSizes::new();
                let (mut rest, mut cut) = (delta, cuts.iter().cycle());
                while !rest.is_empty() {
                    let n = (*cut.next().unwrap()).min(rest.len());
                    sizes.feed(&rest[..n]);
                    rest = &rest[n..];
                }
                sizes.finish()
            };
            let encoded = encode(&base, &target);
            prop_assert_eq!(
                in_pieces(&encoded).unwrap(),
                (base.len() as u64, target.len() as u64)
            );
            let mut headed = Vec::new();
            write_varint(&mut headed, header.0);
            write_varint(&mut headed, header.1);
            headed.extend_from_slice(&noise);
            for delta in [&noise, &headed] {
                let mut pos = 0;
                let claimed = read_varint(delta, &mut pos);
                if let Some(base_size) = claimed.filter(|size| *size <= 4096) {
                    let base = vec![7u8; base_size as usize];
                    prop_assert_eq!(
                        apply(&base, delta, 1 << 20).is_ok(),
                        in_pieces(delta).is_ok(),
                        "{:?}", delta
                    );
                }
            }
        }
    }

    #[test]
    fn a_delta_claiming_more_than_its_instructions_make_is_refused() {
        let check = |delta: &[u8]| {
            let mut sizes = DeltaSizes::new();
            sizes.feed(delta);
            sizes.finish()
        };
        // A base of 5 bytes, a result of 900 MB, no instructions.
        let mut lying = Vec::new();
        write_varint(&mut lying, 5);
        write_varint(&mut lying, 900_000_000);
        assert!(matches!(
            check(&lying),
            Err(DeltaError::ResultSize {
                expected: 900_000_000,
                actual: 0
            })
        ));
        // A copy past the base it claims, and one making more than claimed.
        assert!(
            check(&[5, 10, 0x90, 10]).is_err(),
            "copies 10 of a 5-byte base"
        );
        assert!(
            check(&[5, 3, 0x90, 5]).is_err(),
            "makes 5 where 3 are claimed"
        );
        assert_eq!(check(&[5, 7, 0x90, 5, 2, b'x', b'y']).unwrap(), (5, 7));
    }
}
