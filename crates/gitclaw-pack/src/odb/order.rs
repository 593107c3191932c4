//! A pack's entries in the order they are stored: built by sorting the
//! index's offsets, taken from the places compaction recorded, read in place
//! from its record (`super::recorded`), or built ahead from the index's offset
//! table on a fresh instance ([`EarlyOrder`]).

use std::sync::Arc;

use super::recorded::RecordedOrder;
use crate::{PackError, Result};

/// A pack's entries in the order they are stored (git's `.rev`, and more).
pub(super) struct PackOrder {
    /// `(offset, index)` of every entry, sorted by offset.
    pub(super) sorted: SortedOffsets,
    /// Each index entry's place in `sorted`.
    positions: Positions,
}

/// Each index entry's place in pack order.
enum Positions {
    Built(Vec<u32>),
    /// Read in place from the record compaction wrote.
    Recorded(Arc<RecordedOrder>),
}

impl PackOrder {
    /// The order of `n` entries, `offset_of` giving the offset of each index
    /// position.
    pub(super) fn new(n: u32, offset_of: impl Fn(u32) -> u64) -> Self {
        let max = (0..n).map(&offset_of).max().unwrap_or(0);
        let sorted = match u32::try_from(max) {
            // Every pack under 4 GiB: one 8-byte key an entry, sorted and kept
            // as it is (half the memory of a pair, and half the bytes each
            // pass of the sort moves).
            Ok(_) => SortedOffsets::Packed(radix_sort(
                (0..n)
                    .map(|index| (offset_of(index) << 32) | u64::from(index))
                    .collect(),
                |key| key >> 32,
                max,
            )),
            Err(_) => SortedOffsets::Wide(radix_sort(
                (0..n).map(|index| (offset_of(index), index)).collect(),
                |(offset, _)| offset,
                max,
            )),
        };
        Self::with_positions(sorted)
    }

    fn with_positions(sorted: SortedOffsets) -> Self {
        let mut positions = vec![0u32; sorted.len()];
        for (pos, (_, index)) in sorted.iter().enumerate() {
            // Both fit: a pack holds at most u32::MAX entries.
            positions[index as usize] = pos as u32;
        }
        PackOrder {
            sorted,
            positions: Positions::Built(positions),
        }
    }

    /// The order compaction recorded, read in place (see [`RecordedOrder`]).
    pub(super) fn in_place(recorded: RecordedOrder) -> Self {
        let recorded = Arc::new(recorded);
        PackOrder {
            sorted: SortedOffsets::Recorded(recorded.clone()),
            positions: Positions::Recorded(recorded),
        }
    }

    /// The place in pack order of the entry at index position `index`.
    pub(super) fn place(&self, index: u32) -> Option<u32> {
        match &self.positions {
            Positions::Built(places) => places.get(index as usize).copied(),
            Positions::Recorded(recorded) => recorded.place(index),
        }
    }

    pub(super) fn get(&self, pos: usize) -> Option<(u64, u32)> {
        self.sorted.get(pos)
    }

    /// Every index position's place, in index order.
    #[cfg(test)]
    pub(super) fn places(&self) -> Vec<u32> {
        (0..self.sorted.len() as u32)
            .map(|index| self.place(index).unwrap_or(u32::MAX))
            .collect()
    }

    /// The order of `n` entries as recorded: `places` holds each index
    /// position's place in pack order, `offset_of` gives each index position's
    /// offset. No sort: each offset, read in index order, is put in its place.
    /// `None` unless the record is an order of these entries: `n` places, the
    /// offsets in them strictly rising (so every place is filled once). The
    /// pack's length (`pack_len`) picks the form, without a pass over the
    /// offsets for their largest.
    pub(super) fn recorded(
        n: u32,
        places: Vec<u32>,
        pack_len: u64,
        offset_of: impl Fn(u32) -> u64,
    ) -> Option<Self> {
        if places.len() != n as usize || places.iter().any(|&pos| pos >= n) {
            return None;
        }
        // Every pack under 4 GiB: the packed form. A place never filled keeps
        // offset 0, where no entry starts (the pack's header lies there).
        let sorted = match u32::try_from(pack_len) {
            Ok(_) => {
                let mut keys = vec![0u64; n as usize];
                for (index, &pos) in (0..n).zip(&places) {
                    let offset = offset_of(index);
                    // Past the pack's end: an index at odds with its pack,
                    // left to the sort (and to the reads that then fail).
                    if offset > u64::from(u32::MAX) {
                        return None;
                    }
                    keys[pos as usize] = (offset << 32) | u64::from(index);
                }
                SortedOffsets::Packed(keys)
            }
            Err(_) => {
                let mut pairs = vec![(0u64, 0u32); n as usize];
                for (index, &pos) in (0..n).zip(&places) {
                    pairs[pos as usize] = (offset_of(index), index);
                }
                SortedOffsets::Wide(pairs)
            }
        };
        let mut previous = 0;
        for (offset, _) in sorted.iter() {
            if offset <= previous {
                return None;
            }
            previous = offset;
        }
        Some(PackOrder {
            sorted,
            positions: Positions::Built(places),
        })
    }

    /// Bytes an entry of a pack whose offsets reach `pack_len` takes in the
    /// order's tables.
    pub(super) fn bytes_an_entry(pack_len: u64) -> usize {
        let pair = match u32::try_from(pack_len) {
            Ok(_) => std::mem::size_of::<u64>(),
            Err(_) => std::mem::size_of::<(u64, u32)>(),
        };
        pair + std::mem::size_of::<u32>()
    }
}

/// `(offset, index)` of every entry of a pack, sorted by offset (offsets are
/// distinct: each is an entry's start).
pub(crate) enum SortedOffsets {
    /// Offsets under 4 GiB: `offset << 32 | index`, one number an entry.
    Packed(Vec<u64>),
    Wide(Vec<(u64, u32)>),
    /// Read in place from the record compaction wrote.
    Recorded(Arc<RecordedOrder>),
}

impl std::fmt::Debug for SortedOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl SortedOffsets {
    pub(crate) fn len(&self) -> usize {
        match self {
            SortedOffsets::Packed(keys) => keys.len(),
            SortedOffsets::Wide(pairs) => pairs.len(),
            SortedOffsets::Recorded(recorded) => recorded.len(),
        }
    }

    /// `(offset, index)` of the entry at place `pos`.
    pub(crate) fn get(&self, pos: usize) -> Option<(u64, u32)> {
        match self {
            SortedOffsets::Packed(keys) => keys.get(pos).map(|&key| (key >> 32, key as u32)),
            SortedOffsets::Wide(pairs) => pairs.get(pos).copied(),
            SortedOffsets::Recorded(recorded) => recorded.get(pos),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..self.len()).filter_map(|pos| self.get(pos))
    }

    /// How many entries start at or before `offset`.
    pub(super) fn starting_by(&self, offset: u64) -> usize {
        self.starting_by_within(offset, 0..self.len())
    }

    /// [`Self::starting_by`] among the places `within`.
    fn starting_by_within(&self, offset: u64, within: std::ops::Range<usize>) -> usize {
        let start = within.start;
        match self {
            SortedOffsets::Packed(keys) => keys
                .get(within)
                .map_or(0, |keys| keys.partition_point(|key| key >> 32 <= offset)),
            SortedOffsets::Wide(pairs) => pairs
                .get(within)
                .map_or(0, |pairs| pairs.partition_point(|(o, _)| *o <= offset)),
            SortedOffsets::Recorded(recorded) => {
                // Halving, as `partition_point` does, each step a read of the
                // record (a place it cannot read counts as past `offset`).
                let (mut low, mut high) = (start, within.end.min(recorded.len()));
                while low < high {
                    let mid = low + (high - low) / 2;
                    match recorded.get(mid) {
                        Some((o, _)) if o <= offset => low = mid + 1,
                        _ => high = mid,
                    }
                }
                return low;
            }
        }
        .saturating_add(start)
    }

    /// The place of the entry starting at `offset`, if one does before place
    /// `before`: searched back from there, galloping — a delta's base mostly
    /// lies a little before it, and a search over the whole pack touches
    /// memory far from both.
    pub(crate) fn find_before(&self, offset: u64, before: usize) -> Option<usize> {
        let mut end = before.min(self.len());
        let mut step = 1;
        let start = loop {
            let start = end.saturating_sub(step);
            if start == 0 || self.get(start)?.0 <= offset {
                break start;
            }
            end = start;
            step = step.saturating_mul(2);
        };
        let pos = self.starting_by_within(offset, start..end).checked_sub(1)?;
        (pos >= start && self.get(pos)?.0 == offset).then_some(pos)
    }

    /// The place of the entry starting at `offset`, if one does.
    pub(crate) fn find(&self, offset: u64) -> Option<usize> {
        let after = self.starting_by(offset);
        let pos = after.checked_sub(1)?;
        (self.get(pos)?.0 == offset).then_some(pos)
    }
}

impl PartialEq for SortedOffsets {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// A pack's entry order built before its index is in: from the index's table
/// of offsets alone, read by range while the rest of the index downloads. On a
/// fresh instance the first request's first pack read then does not wait for
/// the order to be built after the download (a few ms at 200k objects; a
/// second or so at tens of millions). See
/// [`PackHandle::with_order`](super::PackHandle::with_order).
pub struct EarlyOrder(pub(super) PackOrder);

impl EarlyOrder {
    /// Where the offsets lie in the (version 2) index of a pack under 2 GiB
    /// whose index is `index_len` bytes long: such an index is a header and
    /// fanout (1,032 bytes), 28 bytes an entry (id, CRC, offset) and two
    /// checksums (40), with no large offsets. `None` for any other length.
    pub fn offsets_range(pack_len: u64, index_len: u64) -> Option<std::ops::Range<u64>> {
        const FIXED: u64 = 8 + 256 * 4 + 40;
        if pack_len >= 1 << 31 {
            return None;
        }
        let entries = index_len.checked_sub(FIXED)?;
        if !entries.is_multiple_of(28) {
            return None;
        }
        let n = entries / 28;
        let start = 8 + 256 * 4 + 24 * n;
        Some(start..start + 4 * n)
    }

    /// The order from the bytes of [`Self::offsets_range`].
    pub fn build(offsets: &[u8]) -> Result<Self> {
        let corrupt = || PackError::Corrupt("a pack index's offset table is malformed".into());
        if !offsets.len().is_multiple_of(4) || offsets.len() / 4 > u32::MAX as usize {
            return Err(corrupt());
        }
        let at = |index: u32| {
            let i = index as usize * 4;
            u32::from_be_bytes([offsets[i], offsets[i + 1], offsets[i + 2], offsets[i + 3]])
        };
        let n = (offsets.len() / 4) as u32;
        // A large offset's place in the other table: no pack under 2 GiB has one.
        if (0..n).any(|index| at(index) & 0x8000_0000 != 0) {
            return Err(corrupt());
        }
        Ok(EarlyOrder(PackOrder::new(n, |index| u64::from(at(index)))))
    }
}

/// `items` sorted by `key`, at most `max` (equal keys in no promised order).
/// A least-significant-digit radix sort, a byte
/// a pass over as many bytes as `max` has: every first request of a pack
/// builds its pack order, and at 200k entries a comparison sort took about
/// 10 ms of it where this takes a few.
pub(super) fn radix_sort<T: Copy + Default>(
    mut items: Vec<T>,
    key: impl Fn(T) -> u64,
    max: u64,
) -> Vec<T> {
    // Below this, the passes' counting costs more than a comparison sort.
    const RADIX_ABOVE: usize = 2048;
    if items.len() <= RADIX_ABOVE {
        items.sort_unstable_by_key(|item| key(*item));
        return items;
    }
    let bytes = (u64::BITS - max.leading_zeros()).div_ceil(8);
    let mut other = vec![T::default(); items.len()];
    for byte in 0..bytes {
        let shift = byte * 8;
        let digit = |item: T| ((key(item) >> shift) & 0xff) as usize;
        let mut starts = [0usize; 256];
        for &item in &items {
            starts[digit(item)] += 1;
        }
        let mut next = 0;
        for start in starts.iter_mut() {
            let count = *start;
            *start = next;
            next += count;
        }
        for &item in &items {
            let slot = &mut starts[digit(item)];
            other[*slot] = item;
            *slot += 1;
        }
        std::mem::swap(&mut items, &mut other);
    }
    items
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{PackOrder, SortedOffsets};

    proptest! {
        /// The radix sort orders distinct offsets as a comparison sort does, at
        /// every size around the switch between them and for offsets of every
        /// width (one byte to all eight).
        #[test]
        fn pairs_come_out_in_offset_order(
            offsets in proptest::collection::hash_set(any::<u64>(), 0..5000),
            width in 1u32..=64,
        ) {
            let mask = if width == 64 { u64::MAX } else { (1 << width) - 1 };
            let distinct: std::collections::BTreeSet<u64> =
                offsets.into_iter().map(|o| o & mask).collect();
            // In index order, which is not pack order: shuffled by the set's hash.
            let shuffled: Vec<u64> = distinct
                .iter()
                .copied()
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            let mut expected: Vec<(u64, u32)> =
                shuffled.iter().zip(0u32..).map(|(&o, i)| (o, i)).collect();
            expected.sort_unstable();
            // Offsets over 4 GiB are kept as pairs, the rest as packed keys:
            // both read back the same.
            let order = PackOrder::new(shuffled.len() as u32, |i| shuffled[i as usize]);
            let packed = matches!(order.sorted, SortedOffsets::Packed(_));
            prop_assert_eq!(packed, shuffled.iter().all(|&o| o <= u64::from(u32::MAX)));
            prop_assert_eq!(order.sorted.iter().collect::<Vec<_>>(), expected.clone());
            for (pos, &(offset, index)) in expected.iter().enumerate() {
                prop_assert_eq!(order.place(index), Some(pos as u32));
                prop_assert_eq!(order.sorted.find(offset), Some(pos));
                // Searched back from any later place: found; from its own or
                // an earlier one: not.
                prop_assert_eq!(order.sorted.find_before(offset, pos + 1), Some(pos));
                prop_assert_eq!(order.sorted.find_before(offset, expected.len()), Some(pos));
                prop_assert_eq!(order.sorted.find_before(offset, pos), None);
                let between = pos + (expected.len() - pos) / 3 + 1;
                prop_assert_eq!(order.sorted.find_before(offset, between), Some(pos));
                if offset > 0 && (pos == 0 || expected[pos - 1].0 != offset - 1) {
                    prop_assert_eq!(order.sorted.find_before(offset - 1, expected.len()), None);
                }
            }
            if let Some(&(first, _)) = expected.first() {
                if first > 0 {
                    prop_assert_eq!(order.sorted.find(first - 1), None);
                }
            }
        }

        /// A recorded order is taken when it is the entries' order, giving
        /// what the sort gives, and refused when it is not: two places
        /// swapped, one repeated, one left out or one past the pack.
        #[test]
        fn a_recorded_order_is_taken_only_when_it_is_the_entries_order(
            offsets in proptest::collection::hash_set(1..u64::MAX, 2..2000),
            wide in any::<bool>(),
            damage in any::<proptest::sample::Index>(),
        ) {
            let mask = if wide { u64::MAX } else { u64::from(u32::MAX) };
            let shuffled: Vec<u64> = offsets
                .into_iter()
                .map(|o| (o & mask).max(1))
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            let n = shuffled.len() as u32;
            let offset_of = |i: u32| shuffled[i as usize];
            let sorted = PackOrder::new(n, offset_of);
            let record = sorted.places();
            let pack_len = shuffled.iter().max().unwrap() + 1;
            let taken = PackOrder::recorded(n, record.clone(), pack_len, offset_of);
            prop_assert!(taken.is_some());
            let taken = taken.unwrap();
            prop_assert_eq!(&taken.sorted, &sorted.sorted);
            prop_assert_eq!(taken.places(), sorted.places());

            if n < 2 {
                return Ok(());
            }
            let at = damage.index(record.len() - 1);
            let mut swapped = record.clone();
            swapped.swap(at, at + 1);
            let mut repeated = record.clone();
            repeated[at + 1] = repeated[at];
            let short = record[..record.len() - 1].to_vec();
            let mut past = record.clone();
            past[at] = n;
            for damaged in [swapped, repeated, short, past] {
                prop_assert!(PackOrder::recorded(n, damaged, pack_len, offset_of).is_none());
            }
        }
    }
}
