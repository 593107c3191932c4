//! A tree as a tar archive, byte for byte what `git archive --format=tar`
//! makes of it: the same headers (ustar, `root`-owned, modes under git's
//! default `tar.umask` of 002), the same pax records for what ustar cannot
//! say (long paths and link targets, sizes past 8 GiB, times past 2242), the
//! commit's id in a pax global header, directories written just before the
//! first file under them, submodules as empty directories, and the same
//! padding at the end.
//!
//! Blobs are read one at a time; one above [`STREAM_ABOVE`] stored whole (in
//! a pack or loose) is streamed, never held.
//!
//! The tree's own `.gitattributes` files decide `export-ignore`, as in git:
//! a file or directory they give it is left out (a directory with all it
//! holds; a directory whose every file is left out still has its entry, as
//! git writes it on meeting the first). `export-subst` and end-of-line conversion are not applied: files
//! are archived as committed.

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

/// One tar record; every entry and its content are padded to a whole one.
const RECORD: usize = 512;
/// git writes its archive in blocks of 20 records: the end is padded to one.
const BLOCK: u64 = 20 * RECORD as u64;
/// The largest size or time the 11 octal digits of a ustar field can say.
const USTAR_MAX: u64 = 0o77777777777;
/// git's default `tar.umask`.
const UMASK: u32 = 0o002;

/// What to archive besides the tree.
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Put before every path, as `git archive --prefix`; one ending in `/`
    /// gets a directory entry of its own.
    pub prefix: Vec<u8>,
    /// The commit archived, named in the pax global header as git does.
    pub commit: Option<ObjectId>,
    /// Every entry's modification time, seconds since the epoch (git uses
    /// the commit's committer time).
    pub mtime: u64,
}

/// What an archive holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarSummary {
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

/// Write tree `tree` to `out` as a tar archive (see the module doc).
pub fn write_tar(
    db: &ObjectDb,
    tree: ObjectId,
    options: &TarOptions,
    out: &mut dyn Write,
) -> Result<TarSummary> {
    let mut tar = Tar {
        out,
        written: 0,
        mtime: options.mtime.min(USTAR_MAX),
        files: 0,
    };
    tar.global_header(options)?;
    let prefix = &options.prefix;
    if prefix.last() == Some(&b'/') {
        // Its trailing slashes but one.
        let mut len = prefix.len();
        while len > 1 && prefix[len - 2] == b'/' {
            len -= 1;
        }
        tar.entry(&tree, &prefix[..len], Mode::Dir, None)?;
    }
    let mut walk = Walk {
        db,
        reader: db.reader(),
        path: prefix.clone(),
        pending: Vec::new(),
        buf: Vec::new(),
        attributes: ExportAttributes::new(prefix.len()),
    };
    walk.tree(&mut tar, tree)?;
    tar.trailer()?;
    Ok(TarSummary {
        files: tar.files,
        bytes: tar.written,
    })
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

    /// The permission bits and type flag of its header.
    fn header(self) -> (u32, u8) {
        match self {
            Mode::Dir | Mode::Submodule => (0o777 & !UMASK, b'5'),
            Mode::File => (0o666 & !UMASK, b'0'),
            Mode::Executable => (0o777 & !UMASK, b'0'),
            Mode::Link => (0o777, b'2'),
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
}

impl Walk<'_> {
    fn tree(&mut self, tar: &mut Tar<'_>, id: ObjectId) -> Result<()> {
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
            if mode == Mode::Dir && self.attributes.ignores(&self.path, true) {
                continue;
            }
            if mode == Mode::Dir {
                let end = self.path.len();
                self.pending.push((end, oid));
                self.path.push(b'/');
                self.tree(tar, oid)?;
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
                tar.entry(&dir, &path, Mode::Dir, None)?;
            }
            if self.attributes.ignores(&self.path, mode == Mode::Submodule) {
                continue;
            }
            match mode {
                Mode::Submodule => {
                    self.path.push(b'/');
                    tar.entry(&oid, &self.path, mode, None)?;
                }
                _ => self.blob(tar, oid, mode)?,
            }
        }
        self.path.truncate(base);
        if added {
            self.attributes.leave();
        }
        Ok(())
    }

    /// A file or symbolic link at `self.path`.
    fn blob(&mut self, tar: &mut Tar<'_>, id: ObjectId, mode: Mode) -> Result<()> {
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
            content => content,
        };
        tar.entry(&id, &self.path, mode, Some(content))
    }
}

/// `export-ignore` as the archived tree's `.gitattributes` files give it:
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
            .initialize_with_selection(&self.collection, ["export-ignore"]);
        self.files += 1;
        true
    }

    fn leave(&mut self) {
        self.search.pop_pattern_list();
        self.files -= 1;
    }

    /// Whether the entry at walk path `path` is left out.
    fn ignores(&mut self, path: &[u8], is_dir: bool) -> bool {
        if self.files == 0 {
            return false;
        }
        let relative = &path[self.prefix_len..];
        self.outcome.reset();
        self.search.pattern_matching_relative_path(
            relative.into(),
            gix_attributes::glob::pattern::Case::Sensitive,
            Some(is_dir),
            &mut self.outcome,
        );
        self.outcome
            .iter_selected()
            .next()
            .is_some_and(|found| matches!(found.assignment.state, gix_attributes::StateRef::Set))
    }
}

/// The archive being written.
struct Tar<'a> {
    out: &'a mut dyn Write,
    written: u64,
    /// Every header's time (at most [`USTAR_MAX`]; the global header says more).
    mtime: u64,
    files: u64,
}

impl Tar<'_> {
    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.out
            .write_all(data)
            .map_err(PackError::io("writing the archive"))?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Zeros up to the next whole record.
    fn pad(&mut self) -> Result<()> {
        let tail = (self.written % RECORD as u64) as usize;
        if tail != 0 {
            self.put(&[0; RECORD][..RECORD - tail])?;
        }
        Ok(())
    }

    /// The pax global header: the commit's id, and a time past ustar's.
    fn global_header(&mut self, options: &TarOptions) -> Result<()> {
        let mut records = Vec::new();
        if let Some(commit) = &options.commit {
            pax_record(
                &mut records,
                "comment",
                commit.to_hex().to_string().as_bytes(),
            );
        }
        if options.mtime > USTAR_MAX {
            pax_record(&mut records, "mtime", options.mtime.to_string().as_bytes());
        }
        if records.is_empty() {
            return Ok(());
        }
        let header = self.header(b"pax_global_header", 0o666, b'g', records.len() as u64, b"");
        self.put(&header)?;
        self.put(&records)?;
        self.pad()
    }

    /// One entry at `path`: its pax header first when ustar cannot say it.
    fn entry(
        &mut self,
        id: &ObjectId,
        path: &[u8],
        mode: Mode,
        content: Option<BlobContent<'_>>,
    ) -> Result<()> {
        let (perm, flag) = mode.header();
        let mut records = Vec::new();
        let mut name = path.to_vec();
        let mut prefix: &[u8] = b"";
        if path.len() > 100 {
            let split = prefix_split(path);
            let rest = path.len() - split - 1;
            if split > 0 && rest <= 100 {
                prefix = &path[..split];
                name = path[split + 1..].to_vec();
            } else {
                name = format!("{}.data", id.to_hex()).into_bytes();
                pax_record(&mut records, "path", path);
            }
        }
        let mut link = Vec::new();
        let mut size = 0;
        match (&content, mode) {
            (Some(BlobContent::Whole(target)), Mode::Link) => {
                if target.len() > 100 {
                    link = format!("see {}.paxheader", id.to_hex()).into_bytes();
                    pax_record(&mut records, "linkpath", target);
                } else {
                    link = target.to_vec();
                }
            }
            (Some(content), _) => {
                size = content.len();
                if size > USTAR_MAX {
                    pax_record(&mut records, "size", size.to_string().as_bytes());
                    size = 0;
                }
            }
            (None, _) => {}
        }
        if !records.is_empty() {
            let pax_name = format!("{}.paxheader", id.to_hex());
            let header = self.header(pax_name.as_bytes(), 0o666, b'x', records.len() as u64, b"");
            self.put(&header)?;
            self.put(&records)?;
            self.pad()?;
        }
        let mut header = self.header(&name, perm, flag, size, &link);
        if !prefix.is_empty() {
            header[345..345 + prefix.len()].copy_from_slice(prefix);
            set_checksum(&mut header);
        }
        self.put(&header)?;
        match content {
            None => {}
            Some(BlobContent::Whole(data)) => {
                self.files += 1;
                if mode != Mode::Link {
                    self.put(&data)?;
                    self.pad()?;
                }
            }
            Some(BlobContent::Stream(size, mut stream)) => {
                self.files += 1;
                copy_stream(id, size, &mut stream, |data| self.put(data))?;
                self.pad()?;
            }
        }
        Ok(())
    }

    /// A ustar header (the prefix field left empty).
    fn header(&self, name: &[u8], perm: u32, flag: u8, size: u64, link: &[u8]) -> [u8; RECORD] {
        let mut h = [0u8; RECORD];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        octal(&mut h[100..108], u64::from(perm));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], self.mtime);
        h[156] = flag;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], 0);
        set_checksum(&mut h);
        h
    }

    /// Two zero records, then zeros to the end of git's block of 20 records.
    fn trailer(&mut self) -> Result<()> {
        let tail = BLOCK - self.written % BLOCK;
        let mut zeros = tail;
        if tail < 2 * RECORD as u64 {
            zeros += BLOCK;
        }
        let block = [0u8; BLOCK as usize];
        while zeros > 0 {
            let n = zeros.min(BLOCK);
            self.put(&block[..n as usize])?;
            zeros -= n;
        }
        Ok(())
    }
}

/// `value` in octal, zero-padded to fill `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
}

/// The header's checksum: the sum of its bytes, the checksum field counted as
/// spaces.
fn set_checksum(h: &mut [u8; RECORD]) {
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..156].fill(0);
    octal(&mut h[148..156], sum);
}

/// Where a path too long for the name field splits into prefix and name: the
/// last `/` within the prefix field's 155 bytes (not a trailing one); 0 for
/// none.
fn prefix_split(path: &[u8]) -> usize {
    let mut i = path.len();
    if i > 1 && path[i - 1] == b'/' {
        i -= 1;
    }
    i = i.min(155);
    loop {
        i -= 1;
        if i == 0 || path[i] == b'/' {
            return i;
        }
    }
}

/// A pax record, `"<length> <keyword>=<value>\n"`, its length counting itself.
fn pax_record(out: &mut Vec<u8>, keyword: &str, value: &[u8]) {
    let rest = 1 + keyword.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len.to_string().len() + rest > len {
        len += 1;
    }
    out.extend_from_slice(format!("{len} {keyword}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value_len in [
            0, 1, 5, 6, 7, 90, 94, 95, 96, 97, 990, 995, 996, 997, 9_990, 9_995,
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; value_len]);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{value_len}");
        }
    }

    #[test]
    fn long_paths_split_at_the_last_slash_the_prefix_field_holds() {
        let path = format!("{}/{}", "d".repeat(150), "f".repeat(90));
        assert_eq!(prefix_split(path.as_bytes()), 150);
        // No slash within the first 155 bytes: no split.
        assert_eq!(prefix_split(format!("{}/f", "d".repeat(200)).as_bytes()), 0);
        // A directory's trailing slash is not where it splits.
        assert_eq!(prefix_split(b"a/b/"), 1);
    }

    #[test]
    fn checksums_are_git_s_seven_octal_digits_and_a_nul() {
        let tar = Tar {
            out: &mut Vec::new(),
            written: 0,
            mtime: 0,
            files: 0,
        };
        let h = tar.header(b"a", 0o664, b'0', 1, b"");
        let sum: u64 = h[..148]
            .iter()
            .chain(&h[156..])
            .map(|&b| u64::from(b))
            .sum::<u64>()
            + 8 * 32;
        assert_eq!(&h[148..156], format!("{sum:07o}\0").as_bytes());
    }
}
