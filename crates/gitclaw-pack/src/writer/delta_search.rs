//! The delta search, git's way: objects with nothing to reuse are sorted by type,
//! path-name hash and size, and each is tried against the previous `window`
//! objects over a sliding window, on several threads. It is the costliest part of
//! writing a pack, so it runs only for what reuse could not cover.

use std::collections::VecDeque;
use std::collections::{HashMap as StdHashMap, HashSet as StdHashSet};

use gix_object::Kind;

use super::{
    reuse::{Item, Plan},
    Phase, ProgressFn, WriteOptions,
};
use crate::{
    delta::{BaseIndex, TargetHashes},
    entry::kind_type,
    odb::ObjectDb,
    PackError, Result,
};

/// Targets up to this size have their block hashes worked out once for all the
/// bases they are tried against (four bytes per byte); larger ones roll them along
/// for each base, so the search's memory stays within its window.
const HASHED_TARGET_BYTES: usize = 1 << 20;

/// Whether an item is searched for a delta, and against what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    No,
    /// Against every base in its window.
    Any,
    /// A stored whole object searched only because the client has objects at
    /// its path: a delta only against one of those (not the client's objects of
    /// other paths the window holds) at least as large, as git's
    /// repack would have stored it (of two versions the larger is the base),
    /// else it goes out whole. Each client object a thin pack leans on costs the
    /// client a read and a deflate to complete the pack (`index-pack
    /// --fix-thin`); leaning on one for every changed file made an incremental
    /// fetch's pack slower to index than git's, for bytes a fast network sends
    /// in less time.
    LargerClientObject,
}

/// Deltas found by the search: item → (base item, delta).
pub(super) type NewDeltas = StdHashMap<usize, (usize, Vec<u8>)>;

struct WindowEntry {
    item: usize,
    /// The object's size: from its header where known, else from reading it.
    size: usize,
    /// The object's bytes, once read: when it was searched, or the first time
    /// it serves as a base. Most objects of a thin fetch's window (the client's
    /// versions of the files it changed) are never tried, so never inflated.
    data: Option<Vec<u8>>,
    depth: u32,
    /// Built the first time the entry serves as a base, then kept.
    index: Option<BaseIndex>,
}

/// Read `item` into `data` unless it is there; its length must be `size`, what
/// its header said (a delta made against other bytes would corrupt the pack).
fn load<'a>(
    reader: &mut crate::odb::ObjectReader<'_>,
    item: &Item,
    size: usize,
    data: &'a mut Option<Vec<u8>>,
) -> Result<&'a [u8]> {
    if data.is_none() {
        let mut buf = Vec::with_capacity(size);
        reader.read_at(&item.id, item.loc(), &mut buf)?;
        if buf.len() != size {
            return Err(PackError::Corrupt(format!(
                "object {} is {} bytes, its pack entry says {size}",
                item.id,
                buf.len()
            )));
        }
        *data = Some(buf);
    }
    Ok(data.as_deref().unwrap_or_default())
}

/// Find deltas for the items with nothing to reuse. Returns item → (base item, delta).
///
/// Bases are only objects written whole, new deltas or the client's objects
/// (never reused stored deltas), and always earlier in the search order, so no
/// cycle can form. The
/// search order is cut into one segment per thread, at changes of path-name hash
/// so similar objects stay together, and the segments are searched in parallel,
/// each with its own window and object reader.
pub(super) fn delta_search(
    db: &ObjectDb,
    items: &[Item],
    options: &WriteOptions,
    progress: ProgressFn<'_>,
) -> Result<NewDeltas> {
    let group = |i: usize| (kind_type(items[i].kind), items[i].name_hash);
    // Big objects are never read for the search (git's core.bigFileThreshold).
    let small = |i: usize| {
        !items[i].big
            && items[i]
                .size()
                .is_none_or(|size| size <= options.max_delta_object_bytes)
    };
    // What is searched for a delta: objects with nothing to reuse, and stored whole
    // objects at a path where the client has an object (a thin pack's delta
    // against the client's previous version beats sending the new one whole) or
    // where an object with nothing to reuse lies: as in git, the larger of two
    // versions is the base, whichever of them was stored whole. One that reused
    // deltas lean on may only become a delta of a whole object: their chains
    // grow by one at most.
    let client_groups: StdHashSet<(u8, u32)> = (0..items.len())
        .filter(|&i| items[i].plan == Plan::ClientBase)
        .map(group)
        .collect();
    // A whole tip entry is searched again where the search may pair it with
    // more objects than when it was worked out (a request reaching past the tip).
    let counts = group_counts(items, options);
    let research_tip = |i: usize| {
        items[i].plan == (Plan::ReuseTip { base: None })
            && counts.get(&group(i)).is_some_and(|&n| n > items[i].peers)
    };
    let fresh_groups: StdHashSet<(u8, u32)> = (0..items.len())
        .filter(|&i| small(i) && (items[i].needs_search() || research_tip(i)))
        .map(group)
        .collect();
    let mut leaned_on = vec![false; items.len()];
    for item in items {
        if let Some(base) = super::reuse::reused_base(item) {
            leaned_on[base] = true;
        }
    }
    let targets: Vec<Target> = (0..items.len())
        .map(|i| {
            let whole = items[i].plan == Plan::ReuseWhole
                && matches!(items[i].kind, Kind::Blob | Kind::Tree);
            if !small(i) {
                Target::No
            } else if items[i].needs_search()
                || research_tip(i)
                || (whole && (options.search_whole || fresh_groups.contains(&group(i))))
            {
                Target::Any
            } else if whole && client_groups.contains(&group(i)) {
                Target::LargerClientObject
            } else {
                Target::No
            }
        })
        .collect();
    // Stored whole objects and the client's help as bases only near a target's path.
    let wanted_hashes: StdHashSet<(u8, u32)> = (0..items.len())
        .filter(|&i| targets[i] != Target::No)
        .map(group)
        .collect();
    // Item numbers in 32 bits (a pack's entry count is): a compaction searches
    // most of a repository's objects.
    let mut order: Vec<u32> = (0..items.len())
        .filter(|&i| {
            targets[i] != Target::No
                || (small(i)
                    && matches!(
                        items[i].plan,
                        Plan::ReuseWhole | Plan::ReuseTip { base: None } | Plan::ClientBase
                    )
                    && wanted_hashes.contains(&group(i)))
        })
        .map(|i| i as u32)
        .collect();
    drop(wanted_hashes);
    let total = order
        .iter()
        .filter(|&&i| targets[i as usize] != Target::No)
        .count();
    if total == 0 {
        return Ok(StdHashMap::new());
    }
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    // Within a path, the client's own objects first, so every object after them
    // may try them; then larger before smaller, as git orders.
    order.sort_by_cached_key(|&i| search_key(&items[i as usize]));

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(options.threads.max(1))
        .min(order.len() / options.objects_per_thread.max(1))
        .max(1);
    let mut segments = Vec::with_capacity(threads);
    let mut rest: &[u32] = &order;
    for t in (1..=threads).rev() {
        let mut cut = rest.len() / t;
        while cut > 0
            && cut < rest.len()
            && group(rest[cut] as usize) == group(rest[cut - 1] as usize)
        {
            cut += 1;
        }
        let (segment, tail) = rest.split_at(cut.min(rest.len()));
        segments.push(segment);
        rest = tail;
    }
    // The search runs on worker threads; this one reports their progress, so the
    // caller can keep its connection alive however long the search takes.
    let done = std::sync::atomic::AtomicU32::new(0);
    let (sender, results) = std::sync::mpsc::channel::<Result<NewDeltas>>();
    progress(Phase::Compressing, 0, total);
    let mut found = StdHashMap::new();
    let mut failure = None;
    std::thread::scope(|s| {
        for segment in segments.into_iter().filter(|segment| !segment.is_empty()) {
            let (sender, done, targets, leaned_on) =
                (sender.clone(), &done, &targets[..], &leaned_on[..]);
            s.spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    search_segment(db, items, targets, leaned_on, segment, options, done)
                }))
                .unwrap_or_else(|_| Err(PackError::Corrupt("delta search thread failed".into())));
                let _ = sender.send(result);
            });
        }
        // Every worker holds a sender: the channel closes when the last one ends.
        drop(sender);
        loop {
            match results.recv_timeout(std::time::Duration::from_millis(250)) {
                Ok(Ok(deltas)) => found.extend(deltas),
                Ok(Err(err)) => {
                    failure.get_or_insert(err);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let now = done.load(std::sync::atomic::Ordering::Relaxed).min(total);
            progress(Phase::Compressing, now, total);
        }
    });
    match failure {
        Some(err) => Err(err),
        None => Ok(found),
    }
}

/// Bits of [`search_key`] for an object's size: sizes from 256 MiB up (never
/// searched at the default limit, `WriteOptions::max_delta_object_bytes`) tie.
const SIZE_BITS: u32 = 28;

/// Where an item goes in the search order, as one number: its type, then its
/// path's hash, the client's objects before the others, then the larger
/// before the smaller. Sorting by it orders as by that tuple would, with a
/// key of 8 bytes where the tuple took 24.
fn search_key(item: &Item) -> u64 {
    let size_max = (1u64 << SIZE_BITS) - 1;
    let smaller_later = size_max - item.size().unwrap_or(0).min(size_max);
    (u64::from(kind_type(item.kind)) << 61)
        | (u64::from(item.name_hash) << (SIZE_BITS + 1))
        | (u64::from(item.plan != Plan::ClientBase) << SIZE_BITS)
        | smaller_later
}

/// How many objects of each type and path-name hash the search may pair: those
/// with nothing to reuse, stored whole, the client's, and whole tip entries.
pub(super) fn group_counts(items: &[Item], options: &WriteOptions) -> StdHashMap<(u8, u32), u32> {
    let mut counts = StdHashMap::new();
    for item in items {
        let pairable = matches!(item.kind, Kind::Blob | Kind::Tree)
            && !item.big
            && item
                .size()
                .is_none_or(|size| size <= options.max_delta_object_bytes)
            && matches!(
                item.plan,
                Plan::Fresh | Plan::ReuseWhole | Plan::ReuseTip { base: None } | Plan::ClientBase
            );
        if pairable {
            *counts
                .entry((kind_type(item.kind), item.name_hash))
                .or_insert(0) += 1;
        }
    }
    counts
}

/// The sliding-window search over one segment of the search order.
fn search_segment(
    db: &ObjectDb,
    items: &[Item],
    targets: &[Target],
    leaned_on: &[bool],
    order: &[u32],
    options: &WriteOptions,
    done: &std::sync::atomic::AtomicU32,
) -> Result<NewDeltas> {
    let mut reader = db.reader();
    let mut found: NewDeltas = StdHashMap::new();
    let mut window: VecDeque<WindowEntry> = VecDeque::with_capacity(options.window + 1);
    let mut hashes = TargetHashes::default();
    for i in order.iter().map(|&i| i as usize) {
        let item = &items[i];
        // Sizes come from headers where known: an object is read only once it
        // is tried as a target or a base.
        let mut data = None;
        let size = match item.size().and_then(|size| usize::try_from(size).ok()) {
            Some(size) => size,
            None => {
                let mut buf = Vec::new();
                reader.read_at(&item.id, item.loc(), &mut buf)?;
                let size = buf.len();
                data = Some(buf);
                size
            }
        };
        let mut depth = 0;
        if targets[i] != Target::No && size >= 64 && size as u64 <= options.max_delta_object_bytes {
            let mut best: Option<(usize, Vec<u8>, u32)> = None;
            let mut hashed = false;
            for entry in window.iter_mut().rev() {
                let max_depth = if leaned_on[i] { 1 } else { options.max_depth };
                if items[entry.item].kind != item.kind || entry.depth >= max_depth {
                    continue;
                }
                let base_len = entry.size;
                // Only the client's own versions of the file: at the same path
                // (path-name hash) and at least as large.
                let base_item = &items[entry.item];
                if targets[i] == Target::LargerClientObject
                    && (base_item.plan != Plan::ClientBase
                        || base_item.name_hash != item.name_hash
                        || base_len < size)
                {
                    continue;
                }
                // Bases far smaller or larger than the target rarely pay off.
                if base_len < size / 32 || size < base_len / 32 {
                    continue;
                }
                let limit = match &best {
                    Some((_, delta, _)) => delta.len().saturating_sub(1),
                    None => (size / 2).saturating_sub(20),
                };
                if limit == 0 {
                    break;
                }
                // A base this much smaller leaves at least the difference to
                // insert, past the limit (git's own cut): not worth indexing.
                if size.saturating_sub(base_len) >= limit {
                    continue;
                }
                let target = load(&mut reader, item, size, &mut data)?;
                let base = load(&mut reader, &items[entry.item], base_len, &mut entry.data)?;
                let index = entry.index.get_or_insert_with(|| BaseIndex::new(base));
                let delta = if size <= HASHED_TARGET_BYTES {
                    if !hashed {
                        hashes.compute(target);
                        hashed = true;
                    }
                    index.encode_hashed(base, target, &hashes, limit)
                } else {
                    index.encode(base, target, limit)
                };
                if let Some(delta) = delta {
                    best = Some((entry.item, delta, entry.depth + 1));
                }
            }
            if let Some((base, delta, d)) = best {
                depth = d;
                found.insert(i, (base, delta));
            }
        }
        if targets[i] != Target::No {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if size as u64 <= options.max_delta_object_bytes {
            if window.len() == options.window {
                window.pop_front();
            }
            window.push_back(WindowEntry {
                item: i,
                size,
                data,
                depth,
                index: None,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odb::Location;
    use proptest::prelude::*;

    fn item(kind: Kind, name_hash: u32, client: bool, size: Option<u64>) -> Item {
        let plan = if client {
            Plan::ClientBase
        } else {
            Plan::Fresh
        };
        let id = gix_hash::ObjectId::null(gix_hash::Kind::Sha1);
        let mut item = Item::new(id, kind, name_hash, Location::Loose, plan).unwrap();
        if let Some(size) = size {
            item.set_size(size);
        }
        item
    }

    fn kinds() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Commit),
            Just(Kind::Tree),
            Just(Kind::Blob),
            Just(Kind::Tag)
        ]
    }

    proptest! {
        /// The one-number key orders items as the tuple it stands for
        /// (type, path hash, the client's first, larger first), for every
        /// size below 256 MiB.
        #[test]
        fn the_search_key_orders_as_its_tuple(
            a in (kinds(), any::<u32>(), any::<bool>(), proptest::option::of(0u64..(1 << SIZE_BITS))),
            b in (kinds(), any::<u32>(), any::<bool>(), proptest::option::of(0u64..(1 << SIZE_BITS))),
            same_path in any::<bool>(),
        ) {
            let mut b = b;
            if same_path {
                (b.0, b.1) = (a.0, a.1);
            }
            let tuple = |(kind, hash, client, size): (Kind, u32, bool, Option<u64>)| {
                ((kind_type(kind), hash), !client, std::cmp::Reverse(size.unwrap_or(0)))
            };
            let (x, y) = (item(a.0, a.1, a.2, a.3), item(b.0, b.1, b.2, b.3));
            prop_assert_eq!(search_key(&x).cmp(&search_key(&y)), tuple(a).cmp(&tuple(b)));
        }
    }
}
