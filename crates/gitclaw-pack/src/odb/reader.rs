//! Reading objects of one repository: finds where each lives (a pack or the loose
//! objects), resolves deltas and consults the shared cache, so callers ask for an
//! object by id and never by location.

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use super::{DecodeState, Location, ObjectDb};
use crate::{PackError, Result};

/// Reads whole objects from an [`ObjectDb`], resolving deltas.
pub struct ObjectReader<'a> {
    pub(super) db: &'a ObjectDb,
    pub(super) state: DecodeState,
}

impl ObjectReader<'_> {
    /// Drop the delta bases this reader has cached (to hold no memory while
    /// the request waits; reading goes on, refilling the cache).
    pub fn release_cache(&mut self) {
        self.state.release_cache();
    }

    /// Read an object into `buf`; `Ok(None)` when the repository does not have it.
    pub fn read(&mut self, id: &oid, buf: &mut Vec<u8>) -> Result<Option<Kind>> {
        match self.db.locate(id)? {
            Some(loc) => self.read_at(id, loc, buf).map(Some),
            None => Ok(None),
        }
    }

    /// Read an object whose location is known.
    pub fn read_at(&mut self, id: &oid, loc: Location, buf: &mut Vec<u8>) -> Result<Kind> {
        let Some(cache) = self.db.cache.clone() else {
            return self.decode_at(id, loc, buf);
        };
        if let Some((kind, data)) = cache.get(id) {
            buf.clear();
            buf.extend_from_slice(&data);
            return Ok(kind);
        }
        let kind = self.decode_at(id, loc, buf)?;
        if matches!(kind, Kind::Commit | Kind::Tree | Kind::Tag) {
            cache.insert(id, kind, buf);
        }
        Ok(kind)
    }

    fn decode_at(&mut self, id: &oid, loc: Location, buf: &mut Vec<u8>) -> Result<Kind> {
        match loc {
            Location::Packed { pack, index } => {
                let handle = self
                    .db
                    .packs
                    .get(pack)
                    .ok_or_else(|| PackError::Corrupt(format!("no pack #{pack}")))?;
                handle.decode(index, buf, &mut self.state)
            }
            Location::Loose => match self.db.loose.read(id)? {
                Some((kind, data)) => {
                    buf.clear();
                    buf.extend_from_slice(&data);
                    Ok(kind)
                }
                None => Err(PackError::Store(format!(
                    "loose object {id} is indexed but missing"
                ))),
            },
        }
    }

    /// The inflated size of an object that must exist.
    pub fn size(&mut self, id: &oid) -> Result<u64> {
        match self.db.locate(id)? {
            Some(Location::Packed { pack, index }) => {
                self.db.packs[pack].object_size(index, &mut self.state)
            }
            Some(Location::Loose) => self
                .db
                .loose
                .size(id)?
                .ok_or_else(|| PackError::MissingObject(id.to_owned())),
            None => Err(PackError::MissingObject(id.to_owned())),
        }
    }

    /// The type and inflated size of an object without reading its content
    /// (delta headers and the loose index only); `Ok(None)` when the repository
    /// does not have it.
    pub fn header(&mut self, id: &oid) -> Result<Option<(Kind, u64)>> {
        match self.db.locate(id)? {
            Some(Location::Packed { pack, index }) => self.db.packs[pack]
                .object_header(index, &mut self.state)
                .map(Some),
            Some(Location::Loose) => self.db.loose.header(id),
            None => Ok(None),
        }
    }

    /// Read an object that must exist.
    pub fn read_existing(&mut self, id: &oid, buf: &mut Vec<u8>) -> Result<Kind> {
        self.read(id, buf)?
            .ok_or_else(|| PackError::MissingObject(id.to_owned()))
    }

    /// Follow annotated tags until a non-tag object; returns its id and kind.
    pub fn peel(&mut self, id: &oid) -> Result<(ObjectId, Kind)> {
        let mut current = id.to_owned();
        let mut buf = Vec::new();
        // Bounded so a tag cycle (impossible with honest hashes) cannot spin forever.
        for _ in 0..64 {
            // The header first: a tag may name a big blob, which is never read whole.
            let (kind, _) = self
                .header(&current)?
                .ok_or(PackError::MissingObject(current))?;
            if kind != Kind::Tag {
                return Ok((current, kind));
            }
            self.read_existing(&current, &mut buf)?;
            let tag = gix_object::TagRefIter::from_bytes(&buf, gix_hash::Kind::Sha1);
            current = tag.target_id().map_err(|err| PackError::MalformedObject {
                oid: current,
                detail: err.to_string(),
            })?;
        }
        Err(PackError::Corrupt(format!(
            "tag chain from {id} is too long"
        )))
    }
}
