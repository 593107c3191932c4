//! Reuse before work: for every object the writer decides whether its stored
//! entry can be copied as it lies (a whole object, or a delta whose base the client
//! will have), because copying costs neither inflating nor deflating.

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    id_table::IdTable,
    odb::{EntryPlace, Location, ObjectDb, StoredBase},
    PackError, Result,
};

/// How one object goes out. Item references are indices into the plan's
/// items, `u32` as a pack's entry count is: with every field this narrow an
/// item is 72 bytes, what a compaction of millions of objects holds one of
/// each for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Copy the stored whole object.
    ReuseWhole,
    /// Copy the stored delta; its base (item index) goes out too.
    ReuseDelta { base: u32 },
    /// Copy the stored delta against a base the client has (thin pack): the
    /// plan's [`Outside`] base number `base`.
    ReuseThin { base: u32 },
    /// Copy the stored delta against a base in the pack that went out first:
    /// the plan's [`Outside`] base number `base`, at its offset in that pack.
    ReusePrefix { base: u32 },
    /// Copy the object's tip entry (its stored delta's base is not sent): whole,
    /// or a delta against the item `base`, which goes out too.
    ReuseTip { base: Option<u32> },
    /// Nothing to reuse: deflate anew (or delta, if the search finds one).
    Fresh,
    /// Not sent: an object the client has, that the delta search may use as a
    /// base (thin packs).
    ClientBase,
}

/// A stored delta's base that is not among the items (see [`Plan::ReuseThin`]
/// and [`Plan::ReusePrefix`]): its id, and for one in the pack sent first its
/// offset there. Few items have one, so they are kept beside the items rather
/// than in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outside {
    pub(super) id: ObjectId,
    pub(super) offset: u64,
}

/// [`Item::pack`] of a loose object.
const LOOSE: u32 = u32::MAX;

pub(super) struct Item {
    pub(super) id: ObjectId,
    pub(super) kind: Kind,
    /// A loose object above the big-object threshold: streamed, never searched.
    pub(super) big: bool,
    /// Whether `size` is known.
    sized: bool,
    pub(super) name_hash: u32,
    /// For a whole tip entry: the objects its search could pair it with (see
    /// [`crate::tip_entries::TipEntry::peers`]).
    pub(super) peers: u32,
    /// Where it is stored (see [`Item::loc`]): `LOOSE`, or a pack's number
    /// and the index position in it.
    pack: u32,
    index: u32,
    pub(super) plan: Plan,
    /// For a packed item, where its entry lies in its pack, once the plan
    /// looked (see [`crate::odb::PackHandle::places_of`]).
    pub(super) place: Option<EntryPlace>,
    /// Inflated size, where known without reading the object (`sized`).
    size: u64,
}

impl Item {
    /// An item to plan, stored at `loc`.
    pub(super) fn new(
        id: ObjectId,
        kind: Kind,
        name_hash: u32,
        loc: Location,
        plan: Plan,
    ) -> Result<Item> {
        let (pack, index) = match loc {
            Location::Packed { pack, index } => match u32::try_from(pack) {
                Ok(pack) if pack != LOOSE => (pack, index),
                _ => return Err(PackError::InvalidPack("too many packs for one plan".into())),
            },
            Location::Loose => (LOOSE, 0),
        };
        Ok(Item {
            id,
            kind,
            big: false,
            sized: false,
            name_hash,
            peers: 0,
            pack,
            index,
            plan,
            place: None,
            size: 0,
        })
    }

    /// Where the object is stored.
    pub(super) fn loc(&self) -> Location {
        match self.pack {
            LOOSE => Location::Loose,
            pack => Location::Packed {
                pack: pack as usize,
                index: self.index,
            },
        }
    }

    /// Inflated size, where known without reading the object.
    pub(super) fn size(&self) -> Option<u64> {
        self.sized.then_some(self.size)
    }

    pub(super) fn set_size(&mut self, size: u64) {
        (self.sized, self.size) = (true, size);
    }

    /// Nothing to reuse, and of a kind that deltas pay for: the delta search's work.
    pub(super) fn needs_search(&self) -> bool {
        self.plan == Plan::Fresh && matches!(self.kind, Kind::Blob | Kind::Tree)
    }
}

/// The items by id: each item's number in an [`IdTable`] (some 5 bytes an
/// item where a map of id to number took 55: 138 MB of a compaction of 2.5M
/// objects).
pub(super) struct Positions(IdTable);

impl Positions {
    /// The table of `items`, whose count must fit a `u32` (a pack's entry
    /// count does). Items added afterwards are not in it.
    pub(super) fn new(items: &[Item]) -> Result<Positions> {
        if u32::try_from(items.len()).is_err() {
            return Err(PackError::InvalidPack(
                "too many objects for one pack".into(),
            ));
        }
        let mut table = IdTable::with_capacity(items.len());
        for (at, item) in (0u32..).zip(items) {
            table.insert(&item.id, at, id_in(items));
        }
        Ok(Positions(table))
    }

    /// The number of the item of `id` among `items` (those the table was made of, and any added since).
    pub(super) fn get(&self, items: &[Item], id: &gix_hash::oid) -> Option<u32> {
        self.0.find(id, id_in(items))
    }

    pub(super) fn contains(&self, items: &[Item], id: &gix_hash::oid) -> bool {
        self.get(items, id).is_some()
    }
}

/// The id of item number `at` of `items`.
fn id_in<'a>(items: &'a [Item]) -> impl Fn(u32) -> Option<&'a gix_hash::oid> {
    move |at| items.get(at as usize).map(|item| item.id.as_ref())
}

/// Decide for every packed item whether its stored entry can be copied.
/// Returns the bases of stored deltas copied against an object that is not
/// an item (see [`Outside`]).
pub(super) fn classify(
    db: &ObjectDb,
    items: &mut [Item],
    position: &Positions,
    thin: Option<super::ClientHas<'_>>,
    first: Option<&super::entries::Prefix<'_>>,
) -> Result<Vec<Outside>> {
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
    let mut outside = Vec::new();
    let mut state = crate::odb::DecodeState::with_cache_bytes(db.delta_cache_bytes());
    for i in 0..items.len() {
        let Location::Packed { pack, index } = items[i].loc() else {
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
            Some(StoredBase::Id(id)) => Some(position.get(items, &id).ok_or(id)),
            Some(StoredBase::Place(at)) => Some(match item_at(items, i, pack, at) {
                Some(base) => Ok(base),
                None => {
                    let id = handle.oid_at_pos(at)?;
                    position.get(items, &id).ok_or(id)
                }
            }),
        };
        let mut outside_base = |id: ObjectId, offset: u64| {
            let number = u32::try_from(outside.len()).unwrap_or(u32::MAX);
            outside.push(Outside { id, offset });
            number
        };
        let plan = match base {
            None => {
                items[i].set_size(size);
                Plan::ReuseWhole
            }
            Some(Ok(base)) => Plan::ReuseDelta { base },
            Some(Err(base_id)) => match in_first(&base_id)? {
                Some(offset) => Plan::ReusePrefix {
                    base: outside_base(base_id, offset),
                },
                None if thin.is_some_and(|has| has.holds_every(items[i].kind))
                    && client_has(&base_id)? =>
                {
                    Plan::ReuseThin {
                        base: outside_base(base_id, 0),
                    }
                }
                None => tip_plan(handle, items, i, position),
            },
        };
        let item = &mut items[i];
        item.plan = plan;
        // The delta search sorts by size (larger first, the likelier bases, as
        // git does): what a stored delta's object weighs its header tells.
        if item.plan == Plan::Fresh {
            item.set_size(handle.object_header(index, &mut state)?.1);
        }
    }
    break_cycles(items);
    Ok(outside)
}

/// The item before `before` whose entry lies at place `at` of pack `pack`, if
/// one is found searching back from there: items in pack order (as the plan
/// puts them, unless told to keep the walk's order) find a delta's base where
/// it lies, without looking its id up. `None` when not found so, which the
/// caller answers by id.
fn item_at(items: &[Item], before: usize, pack: usize, at: usize) -> Option<u32> {
    // Loose items (after the packed ones) sort last.
    let key = |item: &Item| match (item.loc(), item.place) {
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
    (found < end && key(&items[found]) == wanted).then_some(found as u32)
}

/// The plan of a stored delta whose base is not sent (item `i`): its tip
/// entry when it has one it can use (whole, or against a base that is sent),
/// else a fresh entry.
fn tip_plan(
    handle: &crate::odb::PackHandle,
    items: &mut [Item],
    i: usize,
    position: &Positions,
) -> Plan {
    let found = handle
        .commit_graph()
        .and_then(|graph| graph.tip_entries())
        .and_then(|tips| tips.lookup(&items[i].id));
    let Some(tip) = found else {
        return Plan::Fresh;
    };
    let base = match tip.base {
        None => None,
        Some(base) => match position.get(items, &base) {
            Some(base) => Some(base),
            None => return Plan::Fresh,
        },
    };
    let item = &mut items[i];
    item.set_size(tip.object_size);
    item.peers = tip.peers;
    Plan::ReuseTip { base }
}

/// The base item of an item copied as a delta whose base goes out too.
pub(super) fn reused_base(item: &Item) -> Option<usize> {
    match item.plan {
        Plan::ReuseDelta { base } | Plan::ReuseTip { base: Some(base) } => Some(base as usize),
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
        let null = ObjectId::null(gix_hash::Kind::Sha1);
        Item::new(null, Kind::Blob, 0, Location::Loose, plan).unwrap()
    }

    #[test]
    fn an_item_is_72_bytes_and_keeps_what_it_is_given() {
        // What a compaction holds one of for every object it writes.
        assert_eq!(std::mem::size_of::<Item>(), 72);
        let id = ObjectId::from_hex(b"0123456789abcdef0123456789abcdef01234567").unwrap();
        let loc = Location::Packed {
            pack: 3,
            index: u32::MAX - 1,
        };
        let mut item = Item::new(id, Kind::Tree, 7, loc, Plan::ReuseTip { base: Some(9) }).unwrap();
        assert_eq!((item.id, item.kind, item.name_hash), (id, Kind::Tree, 7));
        assert_eq!(item.loc(), loc);
        assert_eq!(item.size(), None);
        item.set_size(0);
        assert_eq!(item.size(), Some(0));
        item.set_size(u64::MAX);
        assert_eq!(item.size(), Some(u64::MAX));
        assert_eq!(item.plan, Plan::ReuseTip { base: Some(9) });
        assert_eq!(reused_base(&item), Some(9));
        assert_eq!(self::item(Plan::Fresh).loc(), Location::Loose);
        // A pack number that would read as loose is refused, not taken so.
        let too_far = Location::Packed {
            pack: u32::MAX as usize,
            index: 0,
        };
        assert!(Item::new(id, Kind::Blob, 0, too_far, Plan::Fresh).is_err());
    }

    #[test]
    fn positions_find_every_item_by_its_id_and_nothing_else() {
        let ids: Vec<ObjectId> = (0u32..5000)
            .map(|n| {
                use sha1::Digest;
                ObjectId::from_bytes_or_panic(&sha1::Sha1::digest(n.to_be_bytes()))
            })
            .collect();
        let mut items: Vec<Item> = ids
            .iter()
            .map(|&id| Item::new(id, Kind::Blob, 0, Location::Loose, Plan::Fresh).unwrap())
            .collect();
        // Ids alike in their leading bytes (the hash) but not the rest.
        let mut alike = ids[0].as_bytes().to_vec();
        alike[19] ^= 1;
        let alike = ObjectId::from_bytes_or_panic(&alike);
        let positions = Positions::new(&items).unwrap();
        for (at, id) in ids.iter().enumerate() {
            assert_eq!(positions.get(&items, id), Some(at as u32));
        }
        assert_eq!(positions.get(&items, &alike), None);
        assert!(!positions.contains(&items, &ObjectId::null(gix_hash::Kind::Sha1)));
        // An item added after the table was made is not in it.
        items.push(Item::new(alike, Kind::Blob, 0, Location::Loose, Plan::ClientBase).unwrap());
        assert_eq!(positions.get(&items, &alike), None);
        assert_eq!(positions.get(&items, &ids[4999]), Some(4999));
    }

    #[test]
    fn a_base_is_found_among_items_in_pack_order_by_its_place_and_never_wrongly() {
        let packed = |pack: usize, pos: u32| {
            let null = ObjectId::null(gix_hash::Kind::Sha1);
            let loc = Location::Packed { pack, index: 0 };
            let mut item = Item::new(null, Kind::Blob, 0, loc, Plan::Fresh).unwrap();
            item.place = Some(EntryPlace { pos, crc: None });
            item
        };
        // Two packs, then a loose object: the plan's order.
        let places = [(0, 3), (0, 9), (0, 10), (0, 400), (1, 2), (1, 9)];
        let mut items: Vec<Item> = places.iter().map(|&(p, pos)| packed(p, pos)).collect();
        items.push(item(Plan::Fresh));
        for (i, &(pack, pos)) in places.iter().enumerate() {
            for before in i + 1..=items.len() {
                assert_eq!(item_at(&items, before, pack, pos as usize), Some(i as u32));
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
                    let found = &items[found as usize];
                    assert_eq!(found.loc(), Location::Packed { pack, index: 0 });
                    assert_eq!(found.place.map(|p| p.pos), Some(pos));
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
