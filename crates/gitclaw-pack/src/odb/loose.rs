//! Loose objects: the repository's objects that are not in a pack. The pack
//! engine does not know where they are stored (the caller's object store and
//! loose-object index), so it reads them through the [`LooseSource`] trait.

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use crate::Result;

/// Loose objects of one repository, as the caller stores them.
pub trait LooseSource: Send + Sync {
    /// Whether the repository has this loose object (an index lookup, no store access).
    fn contains(&self, id: &oid) -> bool;
    /// Read and verify a loose object; `Ok(None)` when the repository has no such object.
    fn read(&self, id: &oid) -> Result<Option<(Kind, Vec<u8>)>>;
    /// Every loose object with its type, for compaction.
    fn list(&self) -> Vec<(ObjectId, Kind)>;
    /// The inflated size of a loose object, from an index when the source has one.
    fn size(&self, id: &oid) -> Result<Option<u64>> {
        Ok(self.header(id)?.map(|(_, size)| size))
    }
    /// The type and inflated size of a loose object, from an index when the source has one.
    fn header(&self, id: &oid) -> Result<Option<(Kind, u64)>> {
        Ok(self.read(id)?.map(|(kind, data)| (kind, data.len() as u64)))
    }
    /// Open a loose object for streaming: for objects too big to hold whole. The
    /// stream is verified as it ends (a mismatch is an error instead of the end).
    fn open(&self, id: &oid) -> Result<Option<ObjectStream>> {
        Ok(self.read(id)?.map(|(kind, data)| ObjectStream {
            kind,
            size: data.len() as u64,
            content: Box::new(std::io::Cursor::new(data)),
        }))
    }
}

/// An object's content as a stream, with its type and size known up front.
pub struct ObjectStream {
    pub kind: Kind,
    pub size: u64,
    pub content: Box<dyn std::io::Read + Send>,
}

/// A repository with no loose objects.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLoose;

impl LooseSource for NoLoose {
    fn contains(&self, _id: &oid) -> bool {
        false
    }
    fn read(&self, _id: &oid) -> Result<Option<(Kind, Vec<u8>)>> {
        Ok(None)
    }
    fn list(&self) -> Vec<(ObjectId, Kind)> {
        Vec::new()
    }
}
