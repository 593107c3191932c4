//! A revision's files: the entry a path names in a tree, and a blob's
//! content, read whole or, above [`STREAM_ABOVE`] and stored whole (in a pack
//! or loose), streamed and never held.

use std::io::Read;

use gix_hash::ObjectId;
use gix_object::{tree::EntryKind, Kind};

use crate::{
    odb::{Location, ObjectDb, ObjectReader},
    walk::read_tree,
    PackError, Result,
};

/// Blobs larger than this that are stored whole are streamed.
pub const STREAM_ABOVE: u64 = 16 << 20;

/// The entry at `path` (`/`-separated, no empty component) under tree
/// `tree`: its id and kind; `None` when no such entry is there (or a
/// component on the way is not a directory).
pub fn find_path(
    reader: &mut ObjectReader<'_>,
    tree: ObjectId,
    path: &[u8],
) -> Result<Option<(ObjectId, EntryKind)>> {
    let mut current = (tree, EntryKind::Tree);
    let mut buf = Vec::new();
    for component in path.split(|&b| b == b'/') {
        if current.1 != EntryKind::Tree {
            return Ok(None);
        }
        read_tree(reader, &current.0, &mut buf)?;
        let found = gix_object::TreeRefIter::from_bytes(&buf, gix_hash::Kind::Sha1)
            .map(|entry| {
                entry.map_err(|err| PackError::MalformedObject {
                    oid: current.0,
                    detail: err.to_string(),
                })
            })
            .find_map(|entry| match entry {
                Ok(e) if e.filename == component => Some(Ok((e.oid.to_owned(), e.mode.kind()))),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            })
            .transpose()?;
        match found {
            Some(entry) => current = entry,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// A blob's content.
pub enum BlobContent<'a> {
    Whole(Vec<u8>),
    /// Stored whole and big: its size, and the content as it is inflated.
    Stream(u64, Box<dyn Read + 'a>),
}

impl BlobContent<'_> {
    pub fn len(&self) -> u64 {
        match self {
            BlobContent::Whole(data) => data.len() as u64,
            BlobContent::Stream(size, _) => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Blob `id`'s content: streamed when it is above [`STREAM_ABOVE`] and stored
/// whole, else read whole. An object that is not a blob is an error.
pub fn open_blob<'a>(
    db: &'a ObjectDb,
    reader: &mut ObjectReader<'_>,
    id: &ObjectId,
) -> Result<BlobContent<'a>> {
    let (kind, size) = reader.header(id)?.ok_or(PackError::MissingObject(*id))?;
    if kind != Kind::Blob {
        return Err(PackError::MalformedObject {
            oid: *id,
            detail: format!("a file's entry names a {kind}"),
        });
    }
    if size > STREAM_ABOVE {
        let stream = match db.locate(id)? {
            Some(Location::Packed { pack, index }) => db.packs()[pack]
                .stream_whole(index)?
                .map(|(_, _, stream)| Box::new(stream) as Box<dyn Read + 'a>),
            Some(Location::Loose) => db
                .loose()
                .open(id)?
                .map(|stream| stream.content as Box<dyn Read + 'a>),
            None => None,
        };
        if let Some(stream) = stream {
            return Ok(BlobContent::Stream(size, stream));
        }
    }
    let mut data = Vec::new();
    reader.read_existing(id, &mut data)?;
    Ok(BlobContent::Whole(data))
}

/// Copy exactly `size` bytes of blob `id`'s `stream` to `out`, through
/// `write` (so the caller counts them as it likes).
pub fn copy_stream(
    id: &ObjectId,
    size: u64,
    stream: &mut dyn Read,
    mut write: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = stream
            .read(&mut buf[..want])
            .map_err(|err| PackError::Corrupt(format!("reading blob {id}: {err}")))?;
        if n == 0 {
            return Err(PackError::Corrupt(format!(
                "blob {id} ends {left} bytes short of its size"
            )));
        }
        write(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}
