//! Reuse before work: for every object the writer decides whether its stored
//! entry can be copied as it lies (a whole object, or a delta whose base the client
//! will have), because copying costs neither inflating nor deflating.

use gix_hash::ObjectId;
use gix_hashtable::HashMap;
use gix_object::Kind;

use crate::{
    odb::{EntryPlace, Location, ObjectDb, StoredBase},
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
    /// Copy the object's tip entry (its stored delta's base is not sent): whole,
    /// or a delta against the item `base`, which goes out too.
    ReuseTip { base: Option<usize> },
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
    /// For a whole tip entry: the objects its search could pair it with (see
    /// [`crate::tip_entries::TipEntry::peers`]).
    pub(super) peers: u32,
    /// For a packed item, where its entry lies in its pack, once the plan
    /// looked (see [`crate::odb::PackHandle::places_of`]).
    pub(super) place: Option<EntryPlace>,
}

impl Item {
    /// Nothing to reuse, and of a kind that deltas pay for: the delta search's work.
    pub(super) fn needs_search(&self) -> bool {
        self.plan == Plan::Fresh && matches!(self.kind, Kind::Blob | Kind::Tree)
    }
}

/// Decide for every packed item whether its stored entry can be copied.
pub(super) fn classify(
    db: &ObjectDb,
    items: &mut [Item],
    position: &HashMap<ObjectId, usize>,
    thin: Option<super::ClientHas<'_>>,
    first: Option<&super::entries::Prefix<'_>>,
) -> Result<()> {
    // A base the client has: one the walk met, or one its older history
    // holds (as compaction's records prove).
    let client_has = |id: &ObjectId| -> Result<bool> {
        let Some(has) = thin else {
            return Ok(false);
        };
        if has.ids.contains(id) {
            return Ok(true);
        }
        match has.history {
            Some(history) => history.has(db, id),
            None => Ok(false),
        }
    };
    let packs = db.packs();
    let in_first = |id: &ObjectId| -> Result<Option<u64>> {
        match first {
            Some(prefix) => prefix.offset_of(id),
            None => Ok(None),
        }
    };
    let mut state = crate::odb::DecodeState::with_cache_bytes(db.delta_cache_bytes());
    for i in 0..items.len() {
        let Location::Packed { pack, index } = items[i].loc else {
            continue;
        };
        let handle = &packs[pack];
        let (size, base) = match items[i].place {
            Some(place) => handle.entry_base_at(place)?,
            None => {
                let (size, base) = handle.entry_base(index)?;
                (size, base.map(StoredBase::Id))
            }
        };
        // The base's item when it goes out, else its id.
        let base = match base {
            None => None,
            Some(StoredBase::Id(id)) => Some(position.get(&id).copied().ok_or(id)),
            Some(StoredBase::Place(at)) => Some(match item_at(items, i, pack, at) {
                Some(base) => Ok(base),
                None => {
                    let id = handle.oid_at_pos(at)?;
                    position.get(&id).copied().ok_or(id)
                }
            }),
        };
        let item = &mut items[i];
        item.plan = match base {
            None => {
                item.size = Some(size);
                Plan::ReuseWhole
            }
            Some(Ok(base)) => Plan::ReuseDelta { base },
            Some(Err(base_id)) => match in_first(&base_id)? {
                Some(offset) => Plan::ReusePrefix {
                    base: base_id,
                    offset,
                },
                None if client_has(&base_id)? => Plan::ReuseThin { base: base_id },
                None => tip_plan(handle, item, position),
            },
        };
        // The delta search sorts by size (larger first, the likelier bases, as
        // git does): what a stored delta's object weighs its header tells.
        if item.plan == Plan::Fresh {
            item.size = Some(handle.object_header(index, &mut state)?.1);
        }
    }
    break_cycles(items);
    Ok(())
}

/// The item before `before` whose entry lies at place `at` of pack `pack`, if
/// one is found searching back from there: items in pack order (as the plan
/// puts them, unless told to keep the walk's order) find a delta's base where
/// it lies, without looking its id up. `None` when not found so, which the
/// caller answers by id.
fn item_at(items: &[Item], before: usize, pack: usize, at: usize) -> Option<usize> {
    // Loose items (after the packed ones) sort last.
    let key = |item: &Item| match (item.loc, item.place) {
        (Location::Packed { pack, .. }, Some(place)) => (pack, place.pos as usize),
        _ => (usize::MAX, usize::MAX),
    };
    let wanted = (pack, at);
    // Gallop back to an item at or before the base, then search between.
    let (mut end, mut step) = (before.min(items.len()), 1);
    let start = loop {
        let start = end.saturating_sub(step);
        if start == 0 || key(&items[start]) <= wanted {
            break start;
        }
        end = start;
        step *= 2;
    };
    let found = start + items[start..end].partition_point(|item| key(item) < wanted);
    (found < end && key(&items[found]) == wanted).then_some(found)
}

/// The plan of a stored delta whose base is not sent: its tip entry when it has
/// one it can use (whole, or against a base that is sent), else a fresh entry.
fn tip_plan(
    handle: &crate::odb::PackHandle,
    item: &mut Item,
    position: &HashMap<ObjectId, usize>,
) -> Plan {
    let found = handle
        .commit_graph()
        .and_then(|graph| graph.tip_entries())
        .and_then(|tips| tips.lookup(&item.id));
    let Some(tip) = found else {
        return Plan::Fresh;
    };
    let base = match tip.base {
        None => None,
        Some(base) => match position.get(&base) {
            Some(&base) => Some(base),
            None => return Plan::Fresh,
        },
    };
    item.size = Some(tip.object_size);
    item.peers = tip.peers;
    Plan::ReuseTip { base }
}

/// The base item of an item copied as a delta whose base goes out too.
pub(super) fn reused_base(item: &Item) -> Option<usize> {
    match item.plan {
        Plan::ReuseDelta { base } | Plan::ReuseTip { base: Some(base) } => Some(base),
        _ => None,
    }
}

/// A tip entry's base may itself lean, through stored deltas and other tip
/// entries, on the object: each such entry is written afresh instead, which
/// leaves every chain ending in a whole object. Stored deltas alone never loop
/// (a stored pack's chains end in whole objects).
fn break_cycles(items: &mut [Item]) {
    for start in 0..items.len() {
        if !matches!(items[start].plan, Plan::ReuseTip { base: Some(_) }) {
            continue;
        }
        let mut at = start;
        // Longer than every item: a loop that does not pass through `start`.
        for _ in 0..=items.len() {
            match reused_base(&items[at]) {
                Some(base) if base == start => {
                    items[start].plan = Plan::Fresh;
                    break;
                }
                Some(base) => at = base,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(plan: Plan) -> Item {
        Item {
            id: ObjectId::null(gix_hash::Kind::Sha1),
            kind: Kind::Blob,
            name_hash: 0,
            loc: Location::Loose,
            plan,
            size: None,
            big: false,
            peers: 0,
            place: None,
        }
    }

    #[test]
    fn a_base_is_found_among_items_in_pack_order_by_its_place_and_never_wrongly() {
        let packed = |pack: usize, pos: u32| Item {
            loc: Location::Packed { pack, index: 0 },
            place: Some(EntryPlace { pos, crc: None }),
            ..item(Plan::Fresh)
        };
        // Two packs, then a loose object: the plan's order.
        let places = [(0, 3), (0, 9), (0, 10), (0, 400), (1, 2), (1, 9)];
        let mut items: Vec<Item> = places.iter().map(|&(p, pos)| packed(p, pos)).collect();
        items.push(item(Plan::Fresh));
        for (i, &(pack, pos)) in places.iter().enumerate() {
            for before in i + 1..=items.len() {
                assert_eq!(item_at(&items, before, pack, pos as usize), Some(i));
            }
            assert_eq!(item_at(&items, i, pack, pos as usize), None);
        }
        assert_eq!(item_at(&items, items.len(), 0, 4), None);
        assert_eq!(item_at(&items, items.len(), 1, 3), None);
        // Out of order (kept as the walk gave them): found or not, never another.
        items.swap(0, 3);
        for before in 0..=items.len() {
            for &(pack, pos) in &places {
                if let Some(found) = item_at(&items, before, pack, pos as usize) {
                    assert_eq!(items[found].loc, Location::Packed { pack, index: 0 });
                    assert_eq!(items[found].place.map(|p| p.pos), Some(pos));
                }
            }
        }
    }

    #[test]
    fn a_tip_entry_leaning_on_its_own_delta_is_written_afresh() {
        let mut items = vec![
            // 0 → 1 → 2 → 0: a loop through two stored deltas.
            item(Plan::ReuseTip { base: Some(1) }),
            item(Plan::ReuseDelta { base: 2 }),
            item(Plan::ReuseDelta { base: 0 }),
            // 3 → 4, whole: no loop.
            item(Plan::ReuseTip { base: Some(4) }),
            item(Plan::ReuseWhole),
            // Two tip entries leaning on each other: one is enough to break.
            item(Plan::ReuseTip { base: Some(6) }),
            item(Plan::ReuseTip { base: Some(5) }),
        ];
        break_cycles(&mut items);
        let plans: Vec<Plan> = items.iter().map(|i| i.plan).collect();
        assert_eq!(
            plans,
            vec![
                Plan::Fresh,
                Plan::ReuseDelta { base: 2 },
                Plan::ReuseDelta { base: 0 },
                Plan::ReuseTip { base: Some(4) },
                Plan::ReuseWhole,
                Plan::Fresh,
                Plan::ReuseTip { base: Some(5) },
            ]
        );
    }
}
