//! A tree as an archive, byte for byte what `git archive` makes of it: in tar
//! form ([`tar`]: ustar headers, `root`-owned, modes under git's default
//! `tar.umask` of 002, pax records for what ustar cannot say, the commit's id
//! in a pax global header, git's padding) or zip form ([`zip`]: git's headers,
//! extra fields, attributes and the commit's id as the comment; its deflated
//! bytes are zlib's of another make). Both walk the tree as git does:
//! directories written just before the first entry under them, submodules as
//! empty directories.
//!
//! Blobs are read one at a time; one above [`STREAM_ABOVE`] stored whole (in
//! a pack or loose) is streamed, never held.
//!
//! The tree's own `.gitattributes` files decide `export-ignore`, as in git: a
//! file or directory they give it is left out (a directory with all it holds;
//! a directory whose every file is left out still has its entry, as git
//! writes it on meeting the first); and `-diff` (e.g. the `binary` macro)
//! marks a file binary in a zip's directory; `ident`, `text`, `eol` and
//! `crlf` convert a file's content as git converts it ([`convert`]);
//! `export-subst` replaces `$Format:…$` in an archived commit's files as git
//! does ([`subst`]). `working-tree-encoding` is not applied.

mod convert;
mod mailmap;
mod subst;
mod tar;
mod zip;

use std::io::Write;

use gix_hash::ObjectId;
use gix_object::tree::EntryKind;

use crate::{
    files::{copy_stream, open_blob, BlobContent},
    odb::{ObjectDb, ObjectReader},
    walk::read_tree,
    PackError, Result,
};

pub use crate::files::STREAM_ABOVE;
pub use subst::{head_mailmap, substitute, ArchiveRefs, MAX_SUBSTITUTED_BYTES};

/// git's default `tar.umask`.
const UMASK: u32 = 0o002;

/// The form of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    Zip,
}

/// What to archive besides the tree.
#[derive(Debug, Clone, Default)]
pub struct ArchiveOptions {
    /// Put before every path, as `git archive --prefix`; one ending in `/`
    /// gets a directory entry of its own.
    pub prefix: Vec<u8>,
    /// The commit archived, named in the archive as git does (a tar's pax
    /// global header, a zip's comment).
    pub commit: Option<ObjectId>,
    /// Every entry's modification time, seconds since the epoch (git uses
    /// the commit's committer time). A zip's DOS times are in UTC.
    pub mtime: u64,
    /// The repository's refs, for `export-subst` files' decorations and
    /// `%(describe)`.
    pub refs: ArchiveRefs,
}

/// What an archive holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Regular files and symbolic links.
    pub files: u64,
    /// Bytes of the archive.
    pub bytes: u64,
}

/// The tree and committer time of commit `id`, what an archive of it takes.
pub fn commit_source(db: &ObjectDb, id: &ObjectId) -> Result<(ObjectId, u64)> {
    let mut graph = crate::walk::Graph::new(db);
    let info = graph.commit_info(id)?;
    // git reads the time as an unsigned number: a negative one is 0.
    Ok((info.tree, u64::try_from(info.time).unwrap_or(0)))
}

/// Write tree `tree` to `out` as an archive of `format` (see the module doc).
pub fn write_archive(
    db: &ObjectDb,
    tree: ObjectId,
    options: &ArchiveOptions,
    format: ArchiveFormat,
    out: &mut dyn Write,
) -> Result<ArchiveSummary> {
    match format {
        ArchiveFormat::Tar => {
            let mut sink = tar::Tar::new(out, options)?;
            walk_into(db, tree, options, &mut sink)?;
            sink.finish()
        }
        ArchiveFormat::Zip => {
            let mut sink = zip::Zip::new(out, options);
            walk_into(db, tree, options, &mut sink)?;
            sink.finish(options)
        }
    }
}

/// Where the walk puts each entry.
trait Sink {
    /// One entry at `path`: a directory or submodule with no content, a file
    /// or link with its content. `binary`: its attributes say so (`-diff`).
    fn entry(
        &mut self,
        id: &ObjectId,
        path: &[u8],
        mode: Mode,
        content: Option<BlobContent<'_>>,
        binary: bool,
    ) -> Result<()>;
}

fn walk_into(
    db: &ObjectDb,
    tree: ObjectId,
    options: &ArchiveOptions,
    sink: &mut dyn Sink,
) -> Result<()> {
    let prefix = &options.prefix;
    if prefix.last() == Some(&b'/') {
        // Its trailing slashes but one.
        let mut len = prefix.len();
        while len > 1 && prefix[len - 2] == b'/' {
            len -= 1;
        }
        sink.entry(&tree, &prefix[..len], Mode::Dir, None, false)?;
    }
    let mut walk = Walk {
        db,
        reader: db.reader(),
        path: prefix.clone(),
        pending: Vec::new(),
        buf: Vec::new(),
        attributes: ExportAttributes::new(prefix.len()),
        subst: options
            .commit
            .map(|commit| subst::Subst::new(db, &options.refs, commit)),
    };
    walk.tree(sink, tree)
}

/// The kinds of entry, with git's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Dir,
    Submodule,
    File,
    Executable,
    Link,
}

impl Mode {
    fn of(kind: EntryKind) -> Mode {
        match kind {
            EntryKind::Tree => Mode::Dir,
            EntryKind::Commit => Mode::Submodule,
            EntryKind::Blob => Mode::File,
            EntryKind::BlobExecutable => Mode::Executable,
            EntryKind::Link => Mode::Link,
        }
    }
}

/// The tree walk: a directory is written only once a file under it is, so a
/// tree with no file under it leaves no entry (as in git).
struct Walk<'a> {
    db: &'a ObjectDb,
    reader: ObjectReader<'a>,
    /// The path of the tree being walked, with the prefix and a trailing `/`.
    path: Vec<u8>,
    /// Directories entered and not written yet, outermost first: the length of
    /// `path` up to each one's name's end, and its tree.
    pending: Vec<(usize, ObjectId)>,
    buf: Vec<u8>,
    attributes: ExportAttributes,
    /// `export-subst`, when a commit is archived (git substitutes nothing in
    /// an archive of a tree).
    subst: Option<subst::Subst<'a>>,
}

impl Walk<'_> {
    fn tree(&mut self, sink: &mut dyn Sink, id: ObjectId) -> Result<()> {
        read_tree(&mut self.reader, &id, &mut self.buf)?;
        let entries = gix_object::TreeRefIter::from_bytes(&self.buf, gix_hash::Kind::Sha1)
            .map(|entry| {
                entry
                    .map(|e| {
                        (
                            e.filename.to_vec(),
                            e.oid.to_owned(),
                            Mode::of(e.mode.kind()),
                        )
                    })
                    .map_err(|err| PackError::MalformedObject {
                        oid: id,
                        detail: err.to_string(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        // A name that would lead out of the archive's directory (possible only
        // in a tree pushed with GITCLAW_FSCK_OBJECTS=off) fails the archive.
        if let Some((name, _, _)) = entries.iter().find(|(name, _, _)| escapes(name)) {
            return Err(PackError::MalformedObject {
                oid: id,
                detail: format!(
                    "a tree entry named {:?} cannot be archived",
                    String::from_utf8_lossy(name)
                ),
            });
        }
        let base = self.path.len();
        let attributes_file = entries
            .iter()
            .find(|(name, _, mode)| {
                name == b".gitattributes" && matches!(mode, Mode::File | Mode::Executable)
            })
            .map(|&(_, oid, _)| oid);
        let added = match attributes_file {
            Some(oid) => {
                let mut data = Vec::new();
                self.reader.read_existing(&oid, &mut data)?;
                self.attributes.enter(&self.path, &data)
            }
            None => false,
        };
        for (name, oid, mode) in entries {
            self.path.truncate(base);
            self.path.extend_from_slice(&name);
            if mode == Mode::Dir && self.attributes.lookup(&self.path, true).ignored {
                continue;
            }
            if mode == Mode::Dir {
                let end = self.path.len();
                self.pending.push((end, oid));
                self.path.push(b'/');
                self.tree(sink, oid)?;
                // Still pending when nothing under it was written.
                if self.pending.last().map(|&(at, _)| at) == Some(end) {
                    self.pending.pop();
                }
                continue;
            }
            // As git does, the directories above go out before the entry's
            // own attributes are looked at.
            for (end, dir) in std::mem::take(&mut self.pending) {
                let mut path = self.path[..end].to_vec();
                path.push(b'/');
                sink.entry(&dir, &path, Mode::Dir, None, false)?;
            }
            let attributes = self.attributes.lookup(&self.path, mode == Mode::Submodule);
            if attributes.ignored {
                continue;
            }
            match mode {
                Mode::Submodule => {
                    self.path.push(b'/');
                    sink.entry(&oid, &self.path, mode, None, false)?;
                }
                _ => self.blob(sink, oid, mode, attributes)?,
            }
        }
        self.path.truncate(base);
        if added {
            self.attributes.leave();
        }
        Ok(())
    }

    /// A file or symbolic link at `self.path`.
    fn blob(
        &mut self,
        sink: &mut dyn Sink,
        id: ObjectId,
        mode: Mode,
        attributes: Attributes,
    ) -> Result<()> {
        let (conversion, substitute) = match mode {
            Mode::Link => (convert::Conversion::default(), false),
            _ => (attributes.conversion, attributes.subst),
        };
        let subst = self.subst.as_mut().filter(|_| substitute);
        let content = match open_blob(self.db, &mut self.reader, &id)? {
            // A link's target goes in its header, whatever its size.
            BlobContent::Stream(size, mut stream) if mode == Mode::Link => {
                let mut target = Vec::new();
                copy_stream(&id, size, &mut stream, |data| {
                    target.extend_from_slice(data);
                    Ok(())
                })?;
                BlobContent::Whole(target)
            }
            content
                if (conversion.is_none() && subst.is_none())
                    || content.len() > convert::BIG_FILE_THRESHOLD =>
            {
                content
            }
            BlobContent::Whole(data) => {
                let data = convert::convert(data, &id, conversion);
                BlobContent::Whole(match subst {
                    Some(subst) => subst.expand(&id, data)?,
                    None => data,
                })
            }
            // Streamed: its line ends, not `$Id$` or `$Format:`. The stream opened is read
            // to count them (the size goes first), a second one is sent.
            BlobContent::Stream(size, stream) if conversion.crlf == convert::Crlf::Keep => {
                BlobContent::Stream(size, stream)
            }
            BlobContent::Stream(size, mut stream) => {
                let mut stats = convert::Stats::default();
                copy_stream(&id, size, &mut stream, |data| {
                    stats.feed(data);
                    Ok(())
                })?;
                drop(stream);
                let added = stats.finish().added_crs(conversion.crlf);
                match (added, open_blob(self.db, &mut self.reader, &id)?) {
                    (Some(added), BlobContent::Stream(_, stream)) => BlobContent::Stream(
                        size + added,
                        Box::new(convert::CrlfReader::new(stream)),
                    ),
                    (Some(_), BlobContent::Whole(data)) => {
                        BlobContent::Whole(convert::convert(data, &id, conversion))
                    }
                    (None, content) => content,
                }
            }
        };
        sink.entry(&id, &self.path, mode, Some(content), attributes.binary)
    }
}

/// `export-ignore` and `diff` as the archived tree's `.gitattributes` files give them:
/// each directory's file applies to the paths under it, a deeper one's lines
/// before a shallower one's, later lines before earlier ones; macros only in
/// the top-level file (git's rules, by `gix-attributes`).
struct ExportAttributes {
    search: gix_attributes::Search,
    collection: gix_attributes::search::MetadataCollection,
    outcome: gix_attributes::search::Outcome,
    /// How many bytes of a walk path are the archive's prefix.
    prefix_len: usize,
    /// Whether any `.gitattributes` file is in force.
    files: usize,
}

/// Whether a tree entry's name could not be a path component of its own.
fn escapes(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
}

/// What the attributes say of one entry.
#[derive(Debug, Default, Clone, Copy)]
struct Attributes {
    /// `export-ignore`: left out of the archive.
    ignored: bool,
    /// `-diff` (as the `binary` macro sets): binary, whatever its bytes.
    binary: bool,
    /// `ident`, `text`, `eol`, `crlf`: what is done to its content.
    conversion: convert::Conversion,
    /// `export-subst`: `$Format:…$` replaced.
    subst: bool,
}

/// The attributes an archive reads.
const ATTRIBUTES: [&str; 7] = [
    "export-ignore",
    "diff",
    "crlf",
    "text",
    "eol",
    "ident",
    "export-subst",
];

/// git skips `.gitattributes` lines longer than this.
const MAX_ATTRIBUTE_LINE: usize = 2048;

impl ExportAttributes {
    fn new(prefix_len: usize) -> Self {
        let mut collection = Default::default();
        let search = gix_attributes::Search::new_globals(
            std::iter::empty::<std::path::PathBuf>(),
            &mut Vec::new(),
            &mut collection,
        )
        .unwrap_or_default();
        ExportAttributes {
            search,
            collection,
            outcome: Default::default(),
            prefix_len,
            files: 0,
        }
    }

    /// The `.gitattributes` of the directory at `dir` (a walk path, ending in
    /// `/` unless it is the prefix alone) holds `data`. Returns whether it was
    /// taken (and must be [`Self::leave`]n with the directory).
    fn enter(&mut self, dir: &[u8], data: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let relative = &dir[self.prefix_len..];
        let lines: Vec<&[u8]> = data
            .split(|&b| b == b'\n')
            .filter(|line| line.len() <= MAX_ATTRIBUTE_LINE)
            .collect();
        let mut source = relative.to_vec();
        source.extend_from_slice(b".gitattributes");
        let source = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&source));
        let added = self.search.add_patterns_buffer(
            &lines.join(&b'\n'),
            source,
            Some(std::path::Path::new("")),
            &mut self.collection,
            relative.is_empty(),
        );
        if added.is_err() {
            return false;
        }
        self.outcome
            .initialize_with_selection(&self.collection, ATTRIBUTES);
        self.files += 1;
        true
    }

    fn leave(&mut self) {
        self.search.pop_pattern_list();
        self.files -= 1;
    }

    /// What the attributes say of the entry at walk path `path`.
    fn lookup(&mut self, path: &[u8], is_dir: bool) -> Attributes {
        if self.files == 0 {
            return Attributes::default();
        }
        let relative = &path[self.prefix_len..];
        self.outcome.reset();
        self.search.pattern_matching_relative_path(
            relative.into(),
            gix_attributes::glob::pattern::Case::Sensitive,
            Some(is_dir),
            &mut self.outcome,
        );
        let mut found = Attributes::default();
        let (mut crlf, mut text, mut eol, mut ident) = Default::default();
        for matched in self.outcome.iter_selected() {
            use gix_attributes::StateRef;
            let value = match matched.assignment.state {
                StateRef::Set => convert::Value::Set,
                StateRef::Unset => convert::Value::Unset,
                StateRef::Value(v) => {
                    convert::Value::Text(std::str::from_utf8(v.as_bstr()).unwrap_or(""))
                }
                StateRef::Unspecified => convert::Value::Unspecified,
            };
            match matched.assignment.name.as_str() {
                "export-ignore" => found.ignored = value == convert::Value::Set,
                "diff" => found.binary = value == convert::Value::Unset,
                "crlf" => crlf = value,
                "text" => text = value,
                "eol" => eol = value,
                "ident" => ident = value,
                "export-subst" => found.subst = value == convert::Value::Set,
                _ => {}
            }
        }
        found.conversion = convert::Conversion::of(crlf, text, eol, ident);
        found
    }
}
