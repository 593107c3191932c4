//! The object type of every entry of a pack, in pack order, two bits an entry
//! — the layout compaction records in the pack's commit-graph (`GCKD`), kept
//! as it is read: a pack of millions of entries holds its types in a quarter
//! of a byte each, taken from the graph without decoding each one, and
//! counted a byte (four entries) at a time.

use gix_object::Kind;

/// Entry types, four a byte, the first in the low bits.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PackedKinds {
    bits: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for PackedKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Every object type, in the order of their bits ([`bits_of`]).
pub(crate) const ALL_KINDS: [Kind; 4] = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag];

/// Each type's two bits; also its slot in [`PackedKinds::counts`].
pub(crate) fn bits_of(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 0,
        Kind::Tree => 1,
        Kind::Blob => 2,
        Kind::Tag => 3,
    }
}

/// The type two bits stand for.
pub(crate) fn kind_of(bits: u8) -> Kind {
    match bits & 3 {
        0 => Kind::Commit,
        1 => Kind::Tree,
        2 => Kind::Blob,
        _ => Kind::Tag,
    }
}

/// For each byte, how many of its four entries are of each type.
const BYTE_COUNTS: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut slot = 0;
        while slot < 4 {
            table[byte][(byte >> (2 * slot)) & 3] += 1;
            slot += 1;
        }
        byte += 1;
    }
    table
};

impl PackedKinds {
    pub(crate) fn from_kinds(kinds: impl ExactSizeIterator<Item = Kind>) -> Self {
        let len = kinds.len();
        let mut bits = vec![0u8; len.div_ceil(4)];
        for (pos, kind) in kinds.enumerate() {
            bits[pos / 4] |= bits_of(kind) << (2 * (pos % 4));
        }
        PackedKinds { bits, len }
    }

    /// `len` types as [`Self::as_bytes`] gives them; `None` unless `bits`
    /// holds exactly that many.
    pub(crate) fn from_bytes(bits: Vec<u8>, len: usize) -> Option<Self> {
        (bits.len() == len.div_ceil(4)).then_some(PackedKinds { bits, len })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The type of the entry at place `pos`.
    pub(crate) fn get(&self, pos: usize) -> Option<Kind> {
        (pos < self.len).then(|| kind_of(self.bits[pos / 4] >> (2 * (pos % 4))))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Kind> + '_ {
        (0..self.len).map(|pos| kind_of(self.bits[pos / 4] >> (2 * (pos % 4))))
    }

    /// The packed bytes (the last one's unused bits zero).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// How many entries are of each type, by [`bits_of`].
    pub(crate) fn counts(&self) -> [usize; 4] {
        let mut counts = [0usize; 4];
        let whole = self.len / 4;
        for &byte in &self.bits[..whole] {
            for (count, add) in counts.iter_mut().zip(BYTE_COUNTS[usize::from(byte)]) {
                *count += usize::from(add);
            }
        }
        for pos in whole * 4..self.len {
            counts[usize::from((self.bits[pos / 4] >> (2 * (pos % 4))) & 3)] += 1;
        }
        counts
    }

    /// Bytes of memory held.
    pub(crate) fn heap_bytes(len: usize) -> usize {
        len.div_ceil(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every type reads back as packed, at every length (whole bytes and
        /// not), and the counts are the types counted one by one.
        #[test]
        fn types_read_back_and_count_as_packed(
            picks in proptest::collection::vec(0usize..4, 0..200),
        ) {
            let kinds: Vec<Kind> = picks.iter().map(|&i| ALL_KINDS[i]).collect();
            let packed = PackedKinds::from_kinds(kinds.iter().copied());
            prop_assert_eq!(packed.len(), kinds.len());
            prop_assert_eq!(packed.iter().collect::<Vec<_>>(), kinds.clone());
            for (pos, kind) in kinds.iter().enumerate() {
                prop_assert_eq!(packed.get(pos), Some(*kind));
            }
            prop_assert_eq!(packed.get(kinds.len()), None);
            let mut counted = [0usize; 4];
            for kind in &kinds {
                counted[usize::from(bits_of(*kind))] += 1;
            }
            prop_assert_eq!(packed.counts(), counted);
            let again = PackedKinds::from_bytes(packed.as_bytes().to_vec(), kinds.len());
            prop_assert_eq!(again.as_ref(), Some(&packed));
            prop_assert!(PackedKinds::from_bytes(packed.as_bytes().to_vec(), kinds.len() + 4).is_none());
        }
    }
}
