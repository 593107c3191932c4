//! Reuse before work: for every object the writer decides whether its stored
//! entry can be copied as it lies (a whole object, or a delta whose base the client
//! will have), because copying costs neither inflating nor deflating.

use gix_hash::ObjectId;
use gix_hashtable::HashMap;
use gix_object::Kind;

use crate::{
    odb::{Location, ObjectDb},
    Result,
};

/// How one object goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Copy the stored whole object.
    ReuseWhole,
    /// Copy the stored delta; its base (item index) goes out too.
    ReuseDelta { base: usize },
    /// Copy the stored delta against a base the client has (thin pack).
    ReuseThin { base: ObjectId },
    /// Copy the stored delta against a base in the pack that went out first, at
    /// this offset of that stored pack.
    ReusePrefix { base: ObjectId, offset: u64 },
    /// Nothing to reuse: deflate anew (or delta, if the search finds one).
    Fresh,
    /// Not sent: an object the client has, that the delta search may use as a
    /// base (thin packs).
    ClientBase,
}

pub(super) struct Item {
    pub(super) id: ObjectId,
    pub(super) kind: Kind,
    pub(super) name_hash: u32,
    pub(super) loc: Location,
    pub(super) plan: Plan,
    /// Inflated size, where known without reading the object.
    pub(super) size: Option<u64>,
    /// A loose object above the big-object threshold: streamed, never searched.
    pub(super) big: bool,
    /// Its delta islands (see [`super::Islands`]); 0 when none.
    pub(super) islands: u64,
    /// A stored whole object the delta search also tries to make a delta of: it
    /// was the base of an island object that may no longer lean on it.
    pub(super) research: bool,
    /// The longest chain of reused deltas leaning on it: a new delta of it may be
    /// at most this much shallower than the depth limit.
    pub(super) height: u32,
}

impl Item {
    /// Nothing to reuse, and of a kind that deltas pay for: the delta search's work.
    pub(super) fn needs_search(&self) -> bool {
        (self.plan == Plan::Fresh || self.research) && matches!(self.kind, Kind::Blob | Kind::Tree)
    }
}

/// Delta islands: an object whose stored delta leans on a base outside one of its
/// islands is written afresh (the search then looks for a base within them). Its
/// old base, when stored whole, is searched too, so it may become a delta of the
/// island object instead of staying whole beside it — typically the previous
/// version of a file whose newest version is a little smaller. The reused deltas
/// hanging off that base then lie deeper: `height` keeps its new chain short
/// enough that they stay within the search's depth limit.
pub(super) fn keep_islands(items: &mut [Item]) {
    let mut barred = Vec::new();
    for i in 0..items.len() {
        if let Plan::ReuseDelta { base } = items[i].plan {
            if !super::Islands::allows(items[base].islands, items[i].islands) {
                items[i].plan = Plan::Fresh;
                barred.push(base);
            }
        }
    }
    if barred.is_empty() {
        return;
    }
    let height = delta_heights(items);
    for base in barred {
        if items[base].plan == Plan::ReuseWhole {
            items[base].research = true;
            items[base].height = height[base];
        }
    }
}

/// For every item, the longest chain of reused deltas leaning on it (0: none).
fn delta_heights(items: &[Item]) -> Vec<u32> {
    let base_of = |i: usize| match items[i].plan {
        Plan::ReuseDelta { base } => Some(base),
        _ => None,
    };
    // Each item's depth below its chain's whole object, then heights from the
    // deepest up.
    let mut depth: Vec<Option<u32>> = vec![None; items.len()];
    let mut chain = Vec::new();
    for start in 0..items.len() {
        chain.clear();
        let mut at = start;
        let mut known = 0;
        while depth[at].is_none() {
            chain.push(at);
            match base_of(at) {
                // A stored chain cannot loop; the bound keeps a corrupt one finite.
                Some(base) if chain.len() <= items.len() => at = base,
                _ => break,
            }
        }
        if let Some(d) = depth[at] {
            known = d + 1;
        }
        for (n, &i) in chain.iter().rev().enumerate() {
            depth[i] = Some(known + n as u32);
        }
    }
    let mut by_depth: Vec<usize> = (0..items.len()).collect();
    by_depth.sort_unstable_by_key(|&i| std::cmp::Reverse(depth[i]));
    let mut height = vec![0u32; items.len()];
    for i in by_depth {
        if let Some(base) = base_of(i) {
            height[base] = height[base].max(height[i] + 1);
        }
    }
    height
}

/// Decide for every packed item whether its stored entry can be copied.
pub(super) fn classify(
    db: &ObjectDb,
    items: &mut [Item],
    position: &HashMap<ObjectId, usize>,
    thin_bases: Option<&gix_hashtable::HashSet<ObjectId>>,
    first: Option<&super::entries::Prefix<'_>>,
) -> Result<()> {
    let packs = db.packs();
    let in_first = |id: &ObjectId| first.and_then(|p| p.offset_of(id));
    for item in items.iter_mut() {
        let Location::Packed { pack, index } = item.loc else {
            continue;
        };
        let handle = &packs[pack];
        let (size, base) = handle.entry_base(index)?;
        item.plan = match base {
            None => {
                item.size = Some(size);
                Plan::ReuseWhole
            }
            Some(base_id) => match position.get(&base_id) {
                Some(&base) => Plan::ReuseDelta { base },
                None if in_first(&base_id).is_some() => Plan::ReusePrefix {
                    base: base_id,
                    offset: in_first(&base_id).unwrap_or_default(),
                },
                None if thin_bases.is_some_and(|has| has.contains(&base_id)) => {
                    Plan::ReuseThin { base: base_id }
                }
                None => Plan::Fresh,
            },
        };
    }
    Ok(())
}
