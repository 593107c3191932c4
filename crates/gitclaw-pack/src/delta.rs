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

/// Polynomial hash of one block; [`roll`] moves it one byte along in O(1).
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

/// The index of a base's blocks, without the base itself: built once per base
/// and used for every target tried against it.
pub struct BaseIndex {
    /// Bits of the bucket number (taken from the top of a mixed hash).
    bits: u32,
    /// `starts[b]..starts[b + 1]` are bucket `b`'s blocks in `blocks`.
    starts: Vec<u32>,
    blocks: Vec<Block>,
    /// One bit per hash value class (eight per bucket, from other bits of the
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
            .map(|i| block_hash(&base[i * BLOCK..(i + 1) * BLOCK]))
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
        let mut filter = vec![0u64; (size * 8).div_ceil(64)];
        for &h in &hashes {
            let bit = filter_bit(h, bits + 3);
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
        let bit = filter_bit(hash, self.bits + 3);
        self.filter[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn candidates(&self, hash: u32) -> &[Block] {
        let b = bucket(hash, self.bits);
        &self.blocks[self.starts[b] as usize..self.starts[b + 1] as usize]
    }

    /// Encode `target` against `base` (the bytes this index was built from).
    /// Returns `None` when the delta would exceed `max_size` bytes (not worth it).
    pub fn encode(&self, base: &[u8], target: &[u8], max_size: usize) -> Option<Vec<u8>> {
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
        let mut hash = if target.len() >= BLOCK {
            block_hash(&target[..BLOCK])
        } else {
            0
        };
        while i + BLOCK <= target.len() {
            let mut best_len = 0usize;
            let mut best_src = 0usize;
            let mut best_back = 0usize;
            let candidates = if self.may_hold(hash) {
                self.candidates(hash)
            } else {
                &[]
            };
            for block in candidates {
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
                if i + BLOCK <= target.len() {
                    hash = block_hash(&target[i..i + BLOCK]);
                }
            } else {
                if i + BLOCK < target.len() {
                    hash = roll(hash, target[i], target[i + BLOCK]);
                }
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

/// The filter bit of a block hash, of `bits` bits: from a second multiplicative
/// mix, so it is not the bucket number again.
#[inline]
fn filter_bit(hash: u32, bits: u32) -> usize {
    (hash.wrapping_mul(0x85EB_CA77) >> (32 - bits)) as usize
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

/// Bucket number of a block hash: the top `bits` of a multiplicative mix (the low
/// bits of a polynomial hash depend on the low bits of the bytes only).
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

        /// Applying arbitrary bytes never panics.
        #[test]
        fn apply_never_panics(base in proptest::collection::vec(any::<u8>(), 0..100), delta in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = apply(&base, &delta, 1 << 20);
        }
    }
}
