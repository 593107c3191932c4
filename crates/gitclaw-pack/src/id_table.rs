//! A set of object ids that lie in the caller's own lists: the table holds
//! 32-bit numbers into them, hashed by the ids they name, rather than the
//! ids again — some 5 bytes an entry (8 with the table's room to grow) where
//! a set or map of ids takes 21 to 33. What a compaction of millions of
//! objects needs one entry of per object.

use gix_hash::oid;

pub(crate) struct IdTable(hashbrown::HashTable<u32>);

/// An id's hash: its leading bytes (object ids are already uniform).
fn id_hash(id: &oid) -> u64 {
    let lead = id.as_bytes().first_chunk().copied().unwrap_or_default();
    u64::from_le_bytes(lead)
}

impl IdTable {
    pub(crate) fn with_capacity(capacity: usize) -> IdTable {
        IdTable(hashbrown::HashTable::with_capacity(capacity))
    }

    /// The number whose id is `id`; `id_of` names the id of each number in
    /// the table.
    pub(crate) fn find<'a>(&self, id: &oid, id_of: impl Fn(u32) -> Option<&'a oid>) -> Option<u32> {
        self.0
            .find(id_hash(id), |&number| id_of(number) == Some(id))
            .copied()
    }

    /// Add `number`, whose id is `id` (never one already in: see [`Self::find`]).
    pub(crate) fn insert<'a>(
        &mut self,
        id: &oid,
        number: u32,
        id_of: impl Fn(u32) -> Option<&'a oid>,
    ) {
        let hash_of = |&n: &u32| id_of(n).map_or(0, id_hash);
        self.0.insert_unique(id_hash(id), number, hash_of);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix_hash::ObjectId;

    fn id(n: u32) -> ObjectId {
        use sha1::Digest;
        ObjectId::from_bytes_or_panic(&sha1::Sha1::digest(n.to_be_bytes()))
    }

    #[test]
    fn numbers_are_found_by_the_ids_they_name_and_nothing_else() {
        let ids: Vec<ObjectId> = (0..5000).map(id).collect();
        let id_of = |n: u32| ids.get(n as usize).map(|id| id.as_ref());
        // Made small: it grows (rehashing through `id_of`) as numbers come.
        let mut table = IdTable::with_capacity(4);
        for (number, id) in (0u32..).zip(&ids) {
            assert_eq!(table.find(id, id_of), None);
            table.insert(id, number, id_of);
        }
        for (number, id) in (0u32..).zip(&ids) {
            assert_eq!(table.find(id, id_of), Some(number));
        }
        // Alike in the leading bytes (the hash) but not the rest.
        let mut alike = ids[7].as_bytes().to_vec();
        alike[19] ^= 1;
        assert_eq!(
            table.find(&ObjectId::from_bytes_or_panic(&alike), id_of),
            None
        );
        assert_eq!(table.find(&id(5000), id_of), None);
    }
}
