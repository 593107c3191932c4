//! Packs that are well formed where a parser checks first (signature, version,
//! zlib streams, trailer checksum) and hostile where it must look deeper:
//! deltas whose copies point outside their base, sizes that lie in entry headers
//! and delta headers, REF_DELTA bases that are missing, later in the pack, or
//! other deltas' results (chains and cycles), counts that lie, truncation.
//!
//! [`HostilePack::build`] also says whether the pack is *clean* — no lie, every
//! delta valid and resolvable, only blobs, no object twice — in which case a
//! correct indexer must accept it and yield every object the model resolved.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use arbitrary::Arbitrary;
use gitclaw_pack::{Kind, ObjectId};
use sha1::Digest;

use crate::object_id;

#[derive(Arbitrary, Debug)]
pub enum Op {
    /// Copy `len` bytes at `offset` of the base (0 length means 0x10000, as git reads it).
    Copy { offset: u32, len: u32 },
    /// Insert these bytes (1 to 127 of them; longer inserts are split).
    Insert(Vec<u8>),
    /// A raw instruction byte (0 is reserved and must be refused).
    Raw(u8),
}

#[derive(Arbitrary, Debug)]
pub enum Base {
    /// The result of entry `n` (modulo the entry count): earlier, later or itself.
    Entry(u16),
    /// One of the repository's objects (a thin pack's base).
    Known(u8),
    /// An id nobody has.
    Random([u8; 20]),
}

#[derive(Arbitrary, Debug)]
pub enum Entry {
    Whole {
        kind: u8,
        data: Vec<u8>,
        size_lie: Option<u16>,
    },
    OfsDelta {
        /// How many entries back the base is (0: itself, past the start: outside the pack).
        back: u16,
        ops: Vec<Op>,
        lies: DeltaLies,
    },
    RefDelta {
        base: Base,
        ops: Vec<Op>,
        lies: DeltaLies,
    },
}

#[derive(Arbitrary, Debug, Default)]
pub struct DeltaLies {
    /// Declared base size instead of the real one.
    pub base_size: Option<u32>,
    /// Declared result size instead of the real one.
    pub result_size: Option<u32>,
    /// Declared (inflated) size of the delta data in the entry header.
    pub entry_size: Option<u16>,
}

impl DeltaLies {
    fn any(&self) -> bool {
        self.base_size.is_some() || self.result_size.is_some() || self.entry_size.is_some()
    }
}

#[derive(Arbitrary, Debug)]
pub struct HostilePack {
    pub entries: Vec<Entry>,
    pub count_lie: Option<u16>,
    pub truncate_at: Option<u16>,
    pub bad_trailer: bool,
    pub trailing_garbage: Vec<u8>,
}

/// A built pack and what a correct indexer must make of it.
pub struct Built {
    pub bytes: Vec<u8>,
    /// Clean: it must be accepted, with exactly `expected` as its objects.
    pub clean: bool,
    pub expected: HashSet<ObjectId>,
}

const KINDS: [Kind; 4] = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag];

fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn entry_header(out: &mut Vec<u8>, code: u8, size: u64) {
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// Git's OFS_DELTA distance encoding.
fn ofs_distance(out: &mut Vec<u8>, mut distance: u64) {
    let mut bytes = vec![(distance & 0x7f) as u8];
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        bytes.push(0x80 | (distance & 0x7f) as u8);
        distance >>= 7;
    }
    bytes.reverse();
    out.extend_from_slice(&bytes);
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).expect("writing to memory");
    z.finish().expect("writing to memory")
}

/// The delta's instructions; the result per the model, when every instruction is
/// valid against `base` (`None` when the base is unknown or an instruction is not).
fn encode_ops(ops: &[Op], base: Option<&[u8]>) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut code = Vec::new();
    let mut result = base.map(|_| Vec::new());
    for op in ops {
        match op {
            Op::Copy { offset, len } => {
                let len = len & 0xff_ffff;
                let mut flags = 0x80u8;
                let mut args = Vec::new();
                for i in 0..4 {
                    let b = (offset >> (8 * i)) as u8;
                    if b != 0 {
                        flags |= 1 << i;
                        args.push(b);
                    }
                }
                for i in 0..3 {
                    let b = (len >> (8 * i)) as u8;
                    if b != 0 {
                        flags |= 0x10 << i;
                        args.push(b);
                    }
                }
                code.push(flags);
                code.extend_from_slice(&args);
                let (start, n) = (
                    *offset as usize,
                    if len == 0 { 0x10000 } else { len as usize },
                );
                result = match (result, base) {
                    (Some(mut r), Some(base))
                        if start.checked_add(n).is_some_and(|e| e <= base.len()) =>
                    {
                        r.extend_from_slice(&base[start..start + n]);
                        Some(r)
                    }
                    _ => None,
                };
            }
            Op::Insert(bytes) => {
                for chunk in bytes.chunks(127) {
                    code.push(chunk.len() as u8);
                    code.extend_from_slice(chunk);
                    if let Some(r) = result.as_mut() {
                        r.extend_from_slice(chunk);
                    }
                }
            }
            Op::Raw(byte) => {
                code.push(*byte);
                // A raw byte is an instruction of unknown meaning: the model gives up.
                result = None;
            }
        }
    }
    (code, result)
}

/// A delta's data: base and result sizes (or the lies told instead), then the
/// instructions.
fn delta_data(
    ops: &[Op],
    base: Option<&[u8]>,
    result: Option<&(Kind, Vec<u8>)>,
    lies: &DeltaLies,
) -> Vec<u8> {
    let (code, _) = encode_ops(ops, base);
    let mut delta = Vec::new();
    let base_len = base.map_or(0, |d| d.len() as u64);
    varint(&mut delta, lies.base_size.map_or(base_len, u64::from));
    let result_len = result.map_or(0, |(_, d)| d.len() as u64);
    varint(&mut delta, lies.result_size.map_or(result_len, u64::from));
    delta.extend_from_slice(&code);
    delta
}

impl HostilePack {
    pub fn build(&self, known: &HashMap<ObjectId, (Kind, Vec<u8>)>) -> Built {
        let n = self.entries.len();
        let mut clean = self.count_lie.is_none()
            && self.truncate_at.is_none()
            && !self.bad_trailer
            && self.trailing_garbage.is_empty();
        // The model's result of each entry, resolved in rounds (a REF_DELTA may
        // name a later entry's result).
        let mut results: Vec<Option<(Kind, Vec<u8>)>> = vec![None; n];
        let mut predicted: Vec<ObjectId> = (0..n)
            .map(|i| object_id(Kind::Blob, format!("unresolved entry {i}").as_bytes()))
            .collect();
        for _round in 0..3 {
            for i in 0..n {
                if results[i].is_some() {
                    continue;
                }
                let resolved = match &self.entries[i] {
                    Entry::Whole { kind, data, .. } => {
                        Some((KINDS[*kind as usize % 4], data.clone()))
                    }
                    Entry::OfsDelta { back, ops, .. } => {
                        let base = (*back as usize != 0)
                            .then(|| i.checked_sub(*back as usize))
                            .flatten()
                            .and_then(|b| results[b].clone());
                        base.and_then(|(kind, data)| {
                            encode_ops(ops, Some(&data)).1.map(|r| (kind, r))
                        })
                    }
                    Entry::RefDelta { base, ops, .. } => {
                        let base = match base {
                            Base::Entry(e) if n > 0 => {
                                let id = predicted[*e as usize % n];
                                results
                                    .iter()
                                    .flatten()
                                    .find(|(k, d)| object_id(*k, d) == id)
                                    .cloned()
                            }
                            Base::Known(k) => {
                                let mut ids: Vec<_> = known.keys().collect();
                                ids.sort();
                                (!ids.is_empty())
                                    .then(|| known[ids[*k as usize % ids.len()]].clone())
                            }
                            _ => None,
                        };
                        base.and_then(|(kind, data)| {
                            encode_ops(ops, Some(&data)).1.map(|r| (kind, r))
                        })
                    }
                };
                if let Some((kind, data)) = &resolved {
                    predicted[i] = object_id(*kind, data);
                }
                results[i] = resolved;
            }
        }
        let mut bytes = b"PACK".to_vec();
        bytes.extend_from_slice(&2u32.to_be_bytes());
        let count = self.count_lie.map_or(n as u32, u32::from);
        bytes.extend_from_slice(&count.to_be_bytes());
        let mut offsets = Vec::with_capacity(n);
        let mut sorted_known: Vec<_> = known.keys().copied().collect();
        sorted_known.sort();
        for (i, entry) in self.entries.iter().enumerate() {
            offsets.push(bytes.len() as u64);
            match entry {
                Entry::Whole {
                    kind,
                    data,
                    size_lie,
                } => {
                    let kind = KINDS[*kind as usize % 4];
                    clean &= size_lie.is_none() && kind == Kind::Blob;
                    let size = size_lie.map_or(data.len() as u64, u64::from);
                    entry_header(&mut bytes, kind_code(kind), size);
                    bytes.extend_from_slice(&deflate(data));
                }
                Entry::OfsDelta { back, ops, lies } => {
                    let base_entry = (*back as usize != 0)
                        .then(|| i.checked_sub(*back as usize))
                        .flatten();
                    let base = base_entry.and_then(|b| results[b].as_ref());
                    clean &= !lies.any()
                        && results[i].is_some()
                        && base.is_some_and(|(k, _)| *k == Kind::Blob);
                    let base = base.map(|(_, d)| d.as_slice());
                    let delta = delta_data(ops, base, results[i].as_ref(), lies);
                    entry_header(
                        &mut bytes,
                        6,
                        lies.entry_size.map_or(delta.len() as u64, u64::from),
                    );
                    // Distance back to the base entry; past the start when there is none.
                    let distance = match base_entry {
                        Some(b) => offsets[i] - offsets[b],
                        None if *back == 0 => 0,
                        None => offsets[i] + u64::from(*back),
                    };
                    ofs_distance(&mut bytes, distance);
                    bytes.extend_from_slice(&deflate(&delta));
                }
                Entry::RefDelta { base, ops, lies } => {
                    let (base_id, base_data) = match base {
                        Base::Entry(e) if n > 0 => {
                            let id = predicted[*e as usize % n];
                            let data = results
                                .iter()
                                .flatten()
                                .find(|(k, d)| object_id(*k, d) == id)
                                .cloned();
                            (id, data)
                        }
                        Base::Known(k) if !sorted_known.is_empty() => {
                            let id = sorted_known[*k as usize % sorted_known.len()];
                            (id, Some(known[&id].clone()))
                        }
                        Base::Random(raw) => (ObjectId::from_bytes_or_panic(raw), None),
                        _ => (ObjectId::from_bytes_or_panic(&[0u8; 20]), None),
                    };
                    clean &= !lies.any()
                        && results[i].is_some()
                        && base_data.as_ref().is_some_and(|(k, _)| *k == Kind::Blob);
                    let base = base_data.as_ref().map(|(_, d)| d.as_slice());
                    let delta = delta_data(ops, base, results[i].as_ref(), lies);
                    entry_header(
                        &mut bytes,
                        7,
                        lies.entry_size.map_or(delta.len() as u64, u64::from),
                    );
                    bytes.extend_from_slice(base_id.as_bytes());
                    bytes.extend_from_slice(&deflate(&delta));
                }
            }
        }
        let mut trailer: [u8; 20] = sha1::Sha1::digest(&bytes).into();
        if self.bad_trailer {
            trailer[0] ^= 1;
        }
        bytes.extend_from_slice(&trailer);
        if let Some(at) = self.truncate_at {
            bytes.truncate(usize::from(at));
        }
        bytes.extend_from_slice(&self.trailing_garbage);
        let expected: HashSet<ObjectId> = results
            .iter()
            .flatten()
            .map(|(k, d)| object_id(*k, d))
            .collect();
        // An object twice is refused, as `git index-pack --strict` does — also when
        // thin-pack completion appends a base that a delta of the pack re-creates.
        clean &= expected.len() == n && expected.iter().all(|id| !known.contains_key(id));
        Built {
            bytes,
            clean,
            expected,
        }
    }
}
