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

/// One entry of a tree listing, as `git ls-tree -l` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeItem {
    /// From the top of the repository's tree.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub id: ObjectId,
    /// A blob's size; none for a tree or a submodule.
    pub size: Option<u64>,
}

impl TreeItem {
    /// The mode git prints for the entry (`100644`, `040000`, …).
    pub fn mode(&self) -> &'static str {
        mode_of(self.kind)
    }

    /// The type git prints for the entry.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            EntryKind::Tree => "tree",
            EntryKind::Commit => "commit",
            _ => "blob",
        }
    }
}

/// What [`list_tree`] lists, and whether it stopped at its limit.
#[derive(Debug, Default)]
pub struct TreeListing {
    pub items: Vec<TreeItem>,
    pub truncated: bool,
}

/// The entries of tree `tree`, found at `base` (empty for the top; paths are
/// `base/name`), as `git ls-tree -l` lists them: in the tree's order; with
/// `recursive`, as `git ls-tree -r -l` does, each subtree's files in place of
/// the subtree. At most `max_items`: beyond them the listing says it is
/// truncated.
pub fn list_tree(
    reader: &mut ObjectReader<'_>,
    tree: ObjectId,
    base: &[u8],
    recursive: bool,
    max_items: usize,
) -> Result<TreeListing> {
    let mut listing = TreeListing::default();
    // The trees being listed, innermost last: each one's path, its entries
    // and how many of them are done.
    let mut open = vec![(base.to_vec(), tree_entries(reader, tree)?, 0usize)];
    while let Some((path, entries, done)) = open.last_mut() {
        let Some((name, kind, id)) = entries.get(*done) else {
            open.pop();
            continue;
        };
        *done += 1;
        let (kind, id) = (*kind, *id);
        let mut full = path.clone();
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(name);
        if recursive && kind == EntryKind::Tree {
            let entries = tree_entries(reader, id)?;
            open.push((full, entries, 0));
            continue;
        }
        if listing.items.len() == max_items {
            listing.truncated = true;
            break;
        }
        let size = match kind {
            EntryKind::Tree | EntryKind::Commit => None,
            _ => Some(reader.header(&id)?.ok_or(PackError::MissingObject(id))?.1),
        };
        listing.items.push(TreeItem {
            path: full,
            kind,
            id,
            size,
        });
    }
    Ok(listing)
}

/// How an entry changed between two trees, as `git diff --name-status`
/// says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Deleted,
    /// Another content or mode, the same type.
    Modified,
    /// Another type: a file, a symbolic link, a submodule.
    TypeChanged,
    /// Added where another path was deleted with the same or similar content
    /// (see [`crate::renames`]).
    Renamed,
}

impl ChangeKind {
    /// The letter git shows for it.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
            ChangeKind::Modified => 'M',
            ChangeKind::TypeChanged => 'T',
            ChangeKind::Renamed => 'R',
        }
    }
}

/// A file (or link, or submodule) that differs between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    pub kind: ChangeKind,
    /// Before and after: none where the path is absent.
    pub old: Option<(EntryKind, ObjectId)>,
    pub new: Option<(EntryKind, ObjectId)>,
    /// For a rename: the path `old` was at, and how similar the two are.
    pub renamed_from: Option<crate::renames::Renamed>,
}

/// What [`diff_trees`] found, and whether it stopped at its limit.
#[derive(Debug, Default)]
pub struct TreeDiff {
    pub changes: Vec<Change>,
    pub truncated: bool,
}

/// The mode git prints for an entry kind (`100644`, `040000`, …).
pub fn mode_of(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Tree => "040000",
        EntryKind::Blob => "100644",
        EntryKind::BlobExecutable => "100755",
        EntryKind::Link => "120000",
        EntryKind::Commit => "160000",
    }
}

type Entries = Vec<(Vec<u8>, EntryKind, ObjectId)>;

/// The files that differ between trees `old` and `new`, as `git diff
/// --no-renames OLD NEW` lists them: in the trees' order, a directory's
/// changes in its place; a file replaced by a directory (or the other way) is
/// the one deleted and what the other holds added. At most `max_changes`.
pub fn diff_trees(
    reader: &mut ObjectReader<'_>,
    old: ObjectId,
    new: ObjectId,
    max_changes: usize,
) -> Result<TreeDiff> {
    let mut diff = TreeDiff::default();
    if old == new {
        return Ok(diff);
    }
    // The pairs of trees being compared, innermost last: their path, entries
    // and how far each is done.
    let mut open: Vec<(Vec<u8>, Entries, Entries, usize, usize)> = vec![(
        Vec::new(),
        tree_entries(reader, old)?,
        tree_entries(reader, new)?,
        0,
        0,
    )];
    while let Some((path, olds, news, i, j)) = open.last_mut() {
        let order = match (olds.get(*i), news.get(*j)) {
            (None, None) => {
                open.pop();
                continue;
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) => tree_order(&a.0, a.1, &b.0, b.1),
        };
        let (a, b) = match order {
            std::cmp::Ordering::Less => {
                *i += 1;
                (Some(olds[*i - 1].clone()), None)
            }
            std::cmp::Ordering::Greater => {
                *j += 1;
                (None, Some(news[*j - 1].clone()))
            }
            std::cmp::Ordering::Equal => {
                *i += 1;
                *j += 1;
                (Some(olds[*i - 1].clone()), Some(news[*j - 1].clone()))
            }
        };
        let name = a
            .as_ref()
            .or(b.as_ref())
            .map(|e| e.0.clone())
            .unwrap_or_default();
        let mut full = path.clone();
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(&name);
        let is_tree = |e: &Option<(Vec<u8>, EntryKind, ObjectId)>| {
            e.as_ref().is_some_and(|e| e.1 == EntryKind::Tree)
        };
        if is_tree(&a) || is_tree(&b) {
            // Equal names are both trees here (a file sorts apart from a
            // directory of its name).
            let (a_id, b_id) = (a.as_ref().map(|e| e.2), b.as_ref().map(|e| e.2));
            if a_id == b_id {
                continue;
            }
            let olds = match a_id {
                Some(id) => tree_entries(reader, id)?,
                None => Vec::new(),
            };
            let news = match b_id {
                Some(id) => tree_entries(reader, id)?,
                None => Vec::new(),
            };
            open.push((full, olds, news, 0, 0));
            continue;
        }
        let kind = match (&a, &b) {
            (Some(a), Some(b)) if a.1 == b.1 && a.2 == b.2 => continue,
            (Some(a), Some(b)) if file_type(a.1) != file_type(b.1) => ChangeKind::TypeChanged,
            (Some(_), Some(_)) => ChangeKind::Modified,
            (Some(_), None) => ChangeKind::Deleted,
            _ => ChangeKind::Added,
        };
        if diff.changes.len() == max_changes {
            diff.truncated = true;
            break;
        }
        diff.changes.push(Change {
            path: full,
            kind,
            old: a.map(|e| (e.1, e.2)),
            new: b.map(|e| (e.1, e.2)),
            renamed_from: None,
        });
    }
    Ok(diff)
}

/// Git's order of tree entries: by name, a directory's name as if it ended
/// in `/`.
fn tree_order(a: &[u8], a_kind: EntryKind, b: &[u8], b_kind: EntryKind) -> std::cmp::Ordering {
    let common = a.len().min(b.len());
    a[..common].cmp(&b[..common]).then_with(|| {
        let next = |name: &[u8], kind: EntryKind| {
            name.get(common)
                .copied()
                .unwrap_or(if kind == EntryKind::Tree { b'/' } else { 0 })
        };
        next(a, a_kind).cmp(&next(b, b_kind))
    })
}

/// The type part of a mode: a file (either mode), a link or a submodule.
fn file_type(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Blob | EntryKind::BlobExecutable => 0,
        EntryKind::Link => 1,
        EntryKind::Commit => 2,
        EntryKind::Tree => 3,
    }
}

/// Tree `id`'s entries, in its order: name, kind, id.
fn tree_entries(reader: &mut ObjectReader<'_>, id: ObjectId) -> Result<Entries> {
    let mut buf = Vec::new();
    read_tree(reader, &id, &mut buf)?;
    gix_object::TreeRefIter::from_bytes(&buf, gix_hash::Kind::Sha1)
        .map(|entry| {
            let entry = entry.map_err(|err| PackError::MalformedObject {
                oid: id,
                detail: err.to_string(),
            })?;
            Ok((
                entry.filename.to_vec(),
                entry.mode.kind(),
                entry.oid.to_owned(),
            ))
        })
        .collect()
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
