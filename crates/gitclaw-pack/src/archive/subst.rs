//! `export-subst`: in a file the attribute names, each `$Format:FMT$` is
//! replaced by the archived commit formatted as `git log --format=FMT` would
//! (git's `format_subst` over `format_commit_message`, with `git archive`'s
//! settings: dates in git's default form, abbreviations of git's automatic
//! length, no colours, `%(describe)` at most once per archive).
//!
//! Placeholders expanded as git expands them: `%%`, `%n`, `%xNN`; `%H`, `%h`,
//! `%T`, `%t`, `%P`, `%p`; `%an`, `%ae`, `%al`, `%ad`, `%aD`, `%ai`, `%aI`,
//! `%at`, `%as` and the same of `%c`; `%s`, `%f`, `%b`, `%B`, `%e`; `%d`,
//! `%D`, `%(decorate[:options])`; `%(describe[:options])`; `%m`; colours
//! (`%Cred`, `%C(...)`, which an archive never shows); the `%+`, `%-` and
//! `% ` prefixes; `%aN`, `%aE`, `%aL` (and `%c…`) through `HEAD:.mailmap`, as
//! git reads it in a bare repository. Placeholders git does not know, and
//! `%N` and `%S` (nothing to show in an archive), are left as written, as git
//! leaves them. Not done, so left as written where git would expand them:
//! relative and human dates (`%ar`, `%ah`), signatures (`%G…`), trailers,
//! padding and wrapping; commits in an encoding other than UTF-8 are not
//! re-encoded.

use gix_hash::ObjectId;

use super::mailmap::Mailmap;
use crate::{
    describe::{describe, DescribeOptions},
    odb::ObjectDb,
    Kind, Result,
};

/// What `$Format:` placeholders read of the repository besides the commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveRefs {
    /// Every ref, sorted by name, with the object it names.
    pub refs: Vec<(String, ObjectId)>,
    /// The branch `HEAD` names (`refs/heads/main`).
    pub head: Option<String>,
}

/// `data` (blob `blob`) as an `export-subst` file in an archive of `commit`
/// reads.
pub fn substitute(
    db: &ObjectDb,
    refs: &ArchiveRefs,
    commit: ObjectId,
    blob: &ObjectId,
    data: Vec<u8>,
) -> Result<Vec<u8>> {
    Subst::new(db, refs, commit).expand(blob, data)
}

/// The most bytes one file's substitution may make: a file of a few MiB of
/// `$Format:%B$` would otherwise hold its commit's message a million times.
pub const MAX_SUBSTITUTED_BYTES: usize = 64 << 20;

/// The `.mailmap` file of the tree `HEAD` names (a blob, or a link's), which
/// git (in a bare repository, as `mailmap.blob`) reads for `%aN`, `%aE` and
/// `%aL`.
pub fn head_mailmap(db: &ObjectDb, refs: &ArchiveRefs) -> Result<Option<ObjectId>> {
    let head = refs.head.as_ref().and_then(|head| {
        let (_, oid) = refs.refs.iter().find(|(name, _)| name == head)?;
        Some(*oid)
    });
    let Some(head) = head else {
        return Ok(None);
    };
    let mut reader = db.reader();
    let (commit, kind) = reader.peel(&head)?;
    if kind != Kind::Commit {
        return Ok(None);
    }
    let tree = crate::walk::Graph::new(db).commit_info(&commit)?.tree;
    let mut buf = Vec::new();
    crate::walk::read_tree(&mut reader, &tree, &mut buf)?;
    Ok(
        gix_object::TreeRefIter::from_bytes(&buf, gix_hash::Kind::Sha1)
            .filter_map(|entry| entry.ok())
            .find(|entry| entry.filename == ".mailmap" && entry.mode.is_blob_or_symlink())
            .map(|entry| entry.oid.to_owned()),
    )
}

fn too_big(blob: &ObjectId) -> crate::PackError {
    crate::PackError::MalformedObject {
        oid: *blob,
        detail: format!(
            "its export-subst placeholders expand past {} MiB",
            MAX_SUBSTITUTED_BYTES >> 20
        ),
    }
}

/// git's decoration types, as far as the text shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoration {
    Head,
    Branch,
    Tag,
    Other,
}

/// The substitution of one archive: the commit, read once when a
/// placeholder needs it.
pub(super) struct Subst<'a> {
    db: &'a ObjectDb,
    refs: &'a ArchiveRefs,
    commit: ObjectId,
    parsed: Option<Parsed>,
    decorations: Option<Vec<(Decoration, String)>>,
    /// git runs `%(describe)` once per archive.
    describes_left: u32,
    /// `HEAD:.mailmap`, read when `%aN` and such first need it.
    mailmap: Option<Mailmap>,
    /// Ids abbreviated so far (each a lookup among all objects).
    abbreviations: std::collections::HashMap<ObjectId, String>,
}

/// The commit as `format_commit_message` reads it.
struct Parsed {
    /// The raw commit, up to its first NUL (git reads it as a C string).
    raw: Vec<u8>,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    author: Option<(usize, usize)>,
    committer: Option<(usize, usize)>,
    encoding: Option<(usize, usize)>,
    /// Where the empty line after the headers is.
    message_off: usize,
    subject_off: usize,
    body_off: usize,
}

impl<'a> Subst<'a> {
    pub fn new(db: &'a ObjectDb, refs: &'a ArchiveRefs, commit: ObjectId) -> Self {
        Subst {
            db,
            refs,
            commit,
            parsed: None,
            decorations: None,
            describes_left: 1,
            mailmap: None,
            abbreviations: Default::default(),
        }
    }

    /// `data` (blob `id`) with every `$Format:…$` replaced; an error past
    /// [`MAX_SUBSTITUTED_BYTES`].
    pub fn expand(&mut self, id: &ObjectId, data: Vec<u8>) -> Result<Vec<u8>> {
        const OPEN: &[u8] = b"$Format:";
        let Some(first) = find(&data, OPEN) else {
            return Ok(data);
        };
        let mut out = Vec::with_capacity(data.len());
        let mut rest = &data[..];
        let mut at = Some(first);
        while let Some(start) = at {
            let inner = &rest[start + OPEN.len()..];
            let Some(end) = inner.iter().position(|&b| b == b'$') else {
                break;
            };
            out.extend_from_slice(&rest[..start]);
            // git reads the format as a C string.
            let format = &inner[..end];
            let format = &format[..format.iter().position(|&b| b == 0).unwrap_or(end)];
            self.format(format, &mut out)
                .map_err(|err| err.unwrap_or_else(|| too_big(id)))?;
            rest = &inner[end + 1..];
            at = find(rest, OPEN);
        }
        out.extend_from_slice(rest);
        Ok(out)
    }

    /// git's `repo_format_commit_message`, appending to `out` (which holds
    /// the file up to here: `%-` may take line ends off it). `Err(None)`:
    /// past [`MAX_SUBSTITUTED_BYTES`].
    fn format(
        &mut self,
        format: &[u8],
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), Option<crate::PackError>> {
        let mut at = 0;
        while at < format.len() {
            let Some(percent) = format[at..].iter().position(|&b| b == b'%') else {
                out.extend_from_slice(&format[at..]);
                break;
            };
            out.extend_from_slice(&format[at..at + percent]);
            at += percent + 1;
            if format.get(at) == Some(&b'%') {
                out.push(b'%');
                at += 1;
                continue;
            }
            match self.item(&format[at..], out)? {
                0 => out.push(b'%'),
                used => at += used,
            }
            if out.len() > MAX_SUBSTITUTED_BYTES {
                return Err(None);
            }
        }
        Ok(())
    }

    /// git's `format_commit_item`: the `+`, `-` and space prefixes.
    fn item(&mut self, placeholder: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let magic = match placeholder.first() {
            Some(&b @ (b'-' | b'+' | b' ')) => Some(b),
            _ => None,
        };
        let Some(magic) = magic else {
            return self.one(placeholder, out);
        };
        let placeholder = &placeholder[1..];
        if placeholder.first() == Some(&b'w') {
            return Ok(0);
        }
        let before = out.len();
        let used = self.one(placeholder, out)?;
        if before == out.len() {
            if magic == b'-' {
                while out.last() == Some(&b'\n') {
                    out.pop();
                }
            }
        } else if magic == b'+' {
            out.insert(before, b'\n');
        } else if magic == b' ' {
            out.insert(before, b' ');
        }
        Ok(used + 1)
    }

    /// git's `format_commit_one`: how many bytes of `placeholder` it used,
    /// 0 for one it does not know.
    fn one(&mut self, placeholder: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let first = placeholder.first().copied().unwrap_or(0);
        match first {
            b'n' => {
                out.push(b'\n');
                return Ok(1);
            }
            b'x' => {
                if let Some(byte) = placeholder.get(1..3).and_then(hex_byte) {
                    out.push(byte);
                    return Ok(3);
                }
            }
            b'C' => return Ok(color(placeholder)),
            _ => {}
        }
        if let Some(args) = placeholder.strip_prefix(b"(describe") {
            return self.describe(placeholder.len() - args.len(), args, out);
        }
        match first {
            b'H' => {
                out.extend_from_slice(self.commit.to_hex().to_string().as_bytes());
                return Ok(1);
            }
            b'h' => {
                let commit = self.commit;
                let abbreviated = self.abbreviate(&commit)?;
                out.extend_from_slice(abbreviated.as_bytes());
                return Ok(1);
            }
            b'T' | b't' => {
                let tree = self.parsed()?.tree;
                let text = match first {
                    b'T' => tree.to_hex().to_string(),
                    _ => self.abbreviate(&tree)?,
                };
                out.extend_from_slice(text.as_bytes());
                return Ok(1);
            }
            b'P' | b'p' => {
                let parents = self.parsed()?.parents.clone();
                for (n, parent) in parents.iter().enumerate() {
                    if n > 0 {
                        out.push(b' ');
                    }
                    let text = match first {
                        b'P' => parent.to_hex().to_string(),
                        _ => self.abbreviate(parent)?,
                    };
                    out.extend_from_slice(text.as_bytes());
                }
                return Ok(1);
            }
            b'm' => {
                out.push(b'>');
                return Ok(1);
            }
            b'd' => {
                self.decorate(out, &DecorationText::default())?;
                return Ok(1);
            }
            b'D' => {
                let text = DecorationText {
                    prefix: Vec::new(),
                    suffix: Vec::new(),
                    ..Default::default()
                };
                self.decorate(out, &text)?;
                return Ok(1);
            }
            b'g' => {
                // No reflog is walked: git writes nothing for these.
                return Ok(match placeholder.get(1) {
                    Some(b'd' | b'D' | b's' | b'n' | b'N' | b'e' | b'E') => 2,
                    _ => 0,
                });
            }
            _ => {}
        }
        if let Some(args) = placeholder.strip_prefix(b"(decorate") {
            let Some((text, used)) = decoration_options(args) else {
                return Ok(0);
            };
            self.decorate(out, &text)?;
            return Ok(placeholder.len() - args.len() + used);
        }
        match first {
            b'a' | b'c' => {
                let part = placeholder.get(1).copied().unwrap_or(0);
                if matches!(part, b'N' | b'E' | b'L') {
                    self.load_mailmap()?;
                }
                self.parsed()?;
                let (Some(parsed), mailmap) = (&self.parsed, &self.mailmap) else {
                    return Ok(0);
                };
                let ident = match first {
                    b'a' => parsed.author,
                    _ => parsed.committer,
                };
                let ident = ident.map_or(&[][..], |(start, end)| &parsed.raw[start..end]);
                Ok(person_part(ident, part, mailmap.as_ref(), out))
            }
            b'e' => {
                let parsed = self.parsed()?;
                if let Some((start, end)) = parsed.encoding {
                    out.extend_from_slice(&parsed.raw[start..end]);
                }
                Ok(1)
            }
            b'B' => {
                let parsed = self.parsed()?;
                let from = (parsed.message_off + 1).min(parsed.raw.len());
                out.extend_from_slice(&parsed.raw[from..]);
                Ok(1)
            }
            b's' => {
                let parsed = self.parsed()?;
                subject(&parsed.raw[parsed.subject_off..], b" ", out);
                Ok(1)
            }
            b'f' => {
                let parsed = self.parsed()?;
                let line = &parsed.raw[parsed.subject_off..];
                let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
                sanitized_subject(line, out);
                Ok(1)
            }
            b'b' => {
                let parsed = self.parsed()?;
                out.extend_from_slice(&parsed.raw[parsed.body_off..]);
                Ok(1)
            }
            _ => Ok(0),
        }
    }

    /// `id` abbreviated as git's `%h` does, once per id.
    fn abbreviate(&mut self, id: &ObjectId) -> Result<String> {
        if let Some(known) = self.abbreviations.get(id) {
            return Ok(known.clone());
        }
        let abbreviated = self.db.abbreviate(id, None)?;
        self.abbreviations.insert(*id, abbreviated.clone());
        Ok(abbreviated)
    }

    /// Read `HEAD:.mailmap` (none: an empty map), once. One too big to be
    /// read whole (above 16 MiB) is taken as none.
    fn load_mailmap(&mut self) -> Result<()> {
        if self.mailmap.is_some() {
            return Ok(());
        }
        let mut map = Mailmap::default();
        if let Some(blob) = head_mailmap(self.db, self.refs)? {
            let mut reader = self.db.reader();
            if reader.size(&blob)? <= crate::files::STREAM_ABOVE {
                let mut data = Vec::new();
                reader.read_existing(&blob, &mut data)?;
                map = Mailmap::parse(&data);
            }
        }
        self.mailmap = Some(map);
        Ok(())
    }

    fn parsed(&mut self) -> Result<&Parsed> {
        if self.parsed.is_none() {
            self.parsed = Some(self.parse()?);
        }
        Ok(self.parsed.as_ref().expect("parsed just now"))
    }

    fn parse(&self) -> Result<Parsed> {
        let mut raw = Vec::new();
        self.db.reader().read_existing(&self.commit, &mut raw)?;
        let info = crate::walk::Graph::new(self.db).commit_info(&self.commit)?;
        if let Some(nul) = raw.iter().position(|&b| b == 0) {
            raw.truncate(nul);
        }
        let (mut author, mut committer, mut encoding) = (None, None, None);
        let mut at = 0;
        while at < raw.len() {
            let eol = raw[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |n| at + n);
            if at == eol {
                break;
            }
            let line = &raw[at..eol];
            if line.starts_with(b"author ") {
                author = Some((at + 7, eol));
            } else if line.starts_with(b"committer ") {
                committer = Some((at + 10, eol));
            } else if line.starts_with(b"encoding ") && encoding.is_none() {
                encoding = Some((at + 9, eol));
            }
            at = eol + 1;
        }
        // At the empty line's LF (or the end).
        let message_off = at.min(raw.len());
        let subject_off = skip_blank_lines(&raw, message_off);
        let after_subject = subject_end(&raw, subject_off);
        let body_off = skip_blank_lines(&raw, after_subject);
        Ok(Parsed {
            tree: info.tree,
            parents: info.parents.to_vec(),
            raw,
            author,
            committer,
            encoding,
            message_off,
            subject_off,
            body_off,
        })
    }

    /// `%(describe…)`: `args` is what follows `(describe`; `used` what
    /// came before it.
    fn describe(&mut self, used: usize, args: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        if self.describes_left == 0 {
            return Ok(0);
        }
        self.describes_left -= 1;
        let mut options = DescribeOptions::default();
        let mut rest = args;
        if let Some(list) = rest.strip_prefix(b":") {
            rest = describe_options(list, &mut options);
        }
        if rest.first() != Some(&b')') {
            return Ok(0);
        }
        if let Some(name) = describe(self.db, &self.refs.refs, self.commit, &options)? {
            out.extend_from_slice(name.trim_end().as_bytes());
        }
        Ok(used + (args.len() - rest.len()) + 1)
    }

    /// git's `format_decorations` of the commit.
    fn decorate(&mut self, out: &mut Vec<u8>, text: &DecorationText) -> Result<()> {
        if self.decorations.is_none() {
            self.decorations = Some(self.load_decorations()?);
        }
        let decorations = self.decorations.as_deref().unwrap_or_default();
        if decorations.is_empty() {
            return Ok(());
        }
        // HEAD's branch is shown beside HEAD, not in its own place.
        let current = decorations
            .iter()
            .any(|(kind, _)| *kind == Decoration::Head)
            .then(|| {
                let head = self.refs.head.as_deref()?;
                decorations.iter().position(|(kind, name)| {
                    *kind == Decoration::Branch && name == head && head.starts_with("refs/")
                })
            })
            .flatten();
        let mut prefix = &text.prefix;
        for (n, (kind, name)) in decorations.iter().enumerate() {
            if Some(n) == current {
                continue;
            }
            out.extend_from_slice(prefix);
            if *kind == Decoration::Tag {
                out.extend_from_slice(&text.tag);
            }
            out.extend_from_slice(pretty_ref(name).as_bytes());
            if let (Some(current), Decoration::Head) = (current, kind) {
                out.extend_from_slice(&text.pointer);
                out.extend_from_slice(pretty_ref(&decorations[current].1).as_bytes());
            }
            prefix = &text.separator;
        }
        out.extend_from_slice(&text.suffix);
        Ok(())
    }

    /// The refs that name the commit, directly or through tags, newest
    /// added first as git lists them (refs in name order, then `HEAD`).
    fn load_decorations(&self) -> Result<Vec<(Decoration, String)>> {
        let mut reader = self.db.reader();
        let mut buf = Vec::new();
        let mut found = Vec::new();
        let head = self.refs.head.as_ref().and_then(|head| {
            let (_, oid) = self.refs.refs.iter().find(|(name, _)| name == head)?;
            Some(("HEAD".to_string(), *oid))
        });
        for (name, oid) in self.refs.refs.iter().chain(head.iter()) {
            if let Some(original) = name.strip_prefix("refs/replace/") {
                if ObjectId::from_hex(original.as_bytes()).ok() == Some(self.commit) {
                    found.push((Decoration::Other, "replaced".to_string()));
                }
                continue;
            }
            let Some((kind, _)) = reader.header(oid)? else {
                continue;
            };
            let decoration = if name == "HEAD" {
                Decoration::Head
            } else if name.starts_with("refs/heads/") {
                Decoration::Branch
            } else if name.starts_with("refs/tags/") {
                Decoration::Tag
            } else {
                Decoration::Other
            };
            if *oid == self.commit {
                found.push((decoration, name.clone()));
            }
            // Through the tags it names, each level decorated as a tag.
            let (mut current, mut kind) = (*oid, kind);
            for _ in 0..64 {
                if kind != Kind::Tag {
                    break;
                }
                if reader.read(&current, &mut buf)?.is_none() {
                    break;
                }
                let Ok(tag) = gix_object::TagRef::from_bytes(&buf, gix_hash::Kind::Sha1) else {
                    break;
                };
                current = tag.target();
                if current == self.commit {
                    found.push((Decoration::Tag, name.clone()));
                }
                kind = match reader.header(&current)? {
                    Some((kind, _)) => kind,
                    None => break,
                };
            }
        }
        found.reverse();
        Ok(found)
    }
}

/// What `%(decorate:…)` may change of the decorations' text.
struct DecorationText {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    separator: Vec<u8>,
    pointer: Vec<u8>,
    tag: Vec<u8>,
}

impl Default for DecorationText {
    fn default() -> Self {
        DecorationText {
            prefix: b" (".to_vec(),
            suffix: b")".to_vec(),
            separator: b", ".to_vec(),
            pointer: b" -> ".to_vec(),
            tag: b"tag: ".to_vec(),
        }
    }
}

/// `%(decorate` options (what follows it): the text and the bytes used up
/// to and with the closing parenthesis, or none when git would not take it.
fn decoration_options(args: &[u8]) -> Option<(DecorationText, usize)> {
    let mut text = DecorationText::default();
    let mut rest = args;
    if let Some(list) = rest.strip_prefix(b":") {
        rest = list;
        loop {
            let names: [(&[u8], &mut Vec<u8>); 5] = [
                (b"prefix", &mut text.prefix),
                (b"suffix", &mut text.suffix),
                (b"separator", &mut text.separator),
                (b"pointer", &mut text.pointer),
                (b"tag", &mut text.tag),
            ];
            let mut taken = false;
            for (name, slot) in names {
                if let Some((value, after)) = arg_value(rest, name) {
                    *slot = expand_literals(value.unwrap_or_default());
                    rest = after;
                    taken = true;
                    break;
                }
            }
            if !taken {
                break;
            }
        }
    }
    (rest.first() == Some(&b')')).then(|| (text, args.len() - rest.len() + 1))
}

/// git's `match_placeholder_arg_value`: `name`, `name=value`, each ended by
/// `,` (used) or `)` (left).
fn arg_value<'f>(at: &'f [u8], name: &[u8]) -> Option<(Option<&'f [u8]>, &'f [u8])> {
    let rest = at.strip_prefix(name)?;
    let (value, rest) = match rest.first() {
        Some(b'=') => {
            let value = &rest[1..];
            let len = value
                .iter()
                .position(|&b| b == b',' || b == b')')
                .unwrap_or(value.len());
            (Some(&value[..len]), &value[len..])
        }
        Some(b',' | b')') => (None, rest),
        _ => return None,
    };
    match rest.first() {
        Some(b',') => Some((value, &rest[1..])),
        Some(b')') => Some((value, rest)),
        _ => None,
    }
}

/// `%(describe:` options into `options`; what is left of `list`.
fn describe_options<'f>(mut list: &'f [u8], options: &mut DescribeOptions) -> &'f [u8] {
    loop {
        if let Some((value, rest)) = arg_value(list, b"tags") {
            let Some(on) = value.map_or(Some(true), parse_bool) else {
                return list;
            };
            options.tags = on;
            list = rest;
        } else if let Some((value, rest)) = arg_value(list, b"abbrev") {
            let Some(n) = value
                .filter(|v| !v.is_empty())
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<i64>().ok())
            else {
                return list;
            };
            // git's --abbrev: 0 none, else between 4 and 40.
            options.abbrev = Some(if n == 0 { 0 } else { n.clamp(4, 40) as usize });
            list = rest;
        } else if let Some((value, rest)) = arg_value(list, b"exclude") {
            match value.filter(|v| !v.is_empty()) {
                Some(v) => options.excludes.push(v.to_vec()),
                None => return list,
            }
            list = rest;
        } else if let Some((value, rest)) = arg_value(list, b"match") {
            match value.filter(|v| !v.is_empty()) {
                Some(v) => options.matches.push(v.to_vec()),
                None => return list,
            }
            list = rest;
        } else {
            return list;
        }
    }
}

/// git's `git_parse_maybe_bool`.
fn parse_bool(value: &[u8]) -> Option<bool> {
    let text = std::str::from_utf8(value).ok()?.to_ascii_lowercase();
    match text.as_str() {
        "" | "false" | "no" | "off" => Some(false),
        "true" | "yes" | "on" => Some(true),
        _ => text.parse::<i64>().ok().map(|n| n != 0),
    }
}

/// `%n` and `%xNN` (and `%%`) in a decoration option's value.
fn expand_literals(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        if value[at] != b'%' {
            out.push(value[at]);
            at += 1;
            continue;
        }
        at += 1;
        match value.get(at) {
            Some(b'%') => {
                out.push(b'%');
                at += 1;
            }
            Some(b'n') => {
                out.push(b'\n');
                at += 1;
            }
            Some(b'x') if value.get(at + 1..at + 3).and_then(hex_byte).is_some() => {
                out.extend(value.get(at + 1..at + 3).and_then(hex_byte));
                at += 3;
            }
            _ => out.push(b'%'),
        }
    }
    out
}

/// `%C…`: colours, which an archive never shows; how much of the
/// placeholder they use (0: not a colour git knows).
fn color(placeholder: &[u8]) -> usize {
    if placeholder.starts_with(b"C(auto)") {
        return 7;
    }
    if placeholder.get(1) == Some(&b'(') {
        return placeholder
            .iter()
            .position(|&b| b == b')')
            .map_or(0, |end| end + 1);
    }
    [&b"red"[..], b"green", b"blue", b"reset"]
        .iter()
        .find(|name| placeholder[1..].starts_with(name))
        .map_or(0, |name| 1 + name.len())
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

/// git's `prettify_refname`.
fn pretty_ref(name: &str) -> &str {
    ["refs/heads/", "refs/tags/", "refs/remotes/"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name)
}

/// The line at `at` with its LF: its end.
fn line_end(raw: &[u8], at: usize) -> usize {
    raw[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |n| at + n + 1)
}

/// git's `isspace`: space, tab, LF and CR (not form feed or vertical tab).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Its length without trailing white space (git's `is_blank_line`).
fn trimmed(line: &[u8]) -> usize {
    line.iter()
        .rposition(|&b| !is_space(b))
        .map_or(0, |n| n + 1)
}

/// git's `skip_blank_lines`.
fn skip_blank_lines(raw: &[u8], mut at: usize) -> usize {
    while at < raw.len() {
        let end = line_end(raw, at);
        if trimmed(&raw[at..end]) > 0 {
            break;
        }
        at = end;
    }
    at
}

/// Where the subject starting at `at` ends: after the first blank line
/// (with it), or the end.
fn subject_end(raw: &[u8], mut at: usize) -> usize {
    while at < raw.len() {
        let end = line_end(raw, at);
        let blank = trimmed(&raw[at..end]) == 0;
        at = end;
        if blank {
            break;
        }
    }
    at
}

/// git's `format_subject`: the first paragraph's lines, trimmed, joined.
fn subject(message: &[u8], separator: &[u8], out: &mut Vec<u8>) {
    let mut at = 0;
    let mut first = true;
    while at < message.len() {
        let end = line_end(message, at);
        let len = trimmed(&message[at..end]);
        if len == 0 {
            break;
        }
        if !first {
            out.extend_from_slice(separator);
        }
        out.extend_from_slice(&message[at..at + len]);
        first = false;
        at = end;
    }
}

/// git's `format_sanitized_subject` (`%f`).
fn sanitized_subject(line: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let title = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'_';
    let mut space = 2;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if title(b) {
            if space == 1 {
                out.push(b'-');
            }
            space = 0;
            out.push(b);
            if b == b'.' {
                while line.get(i + 1) == Some(&b'.') {
                    i += 1;
                }
            }
        } else {
            space |= 1;
        }
        i += 1;
    }
    while out.len() > start && matches!(out.last(), Some(b'.' | b'-')) {
        out.pop();
    }
}

/// git's `format_person_part` of an author or committer line's value
/// (`N`, `E` and `L` through `mailmap`).
fn person_part(ident: &[u8], part: u8, mailmap: Option<&Mailmap>, out: &mut Vec<u8>) -> usize {
    let skip = |part: u8| match part {
        b'n' | b'e' | b't' | b'd' | b'D' | b'r' | b'i' => 2,
        _ => 0,
    };
    let Some(split) = split_ident(ident) else {
        return skip(part);
    };
    let (mut name, mut mail) = (&ident[..split.name_end], &ident[split.mail.clone()]);
    if matches!(part, b'N' | b'E' | b'L') {
        if let Some((proper_name, proper_mail)) = mailmap.and_then(|m| m.map(mail, name)) {
            name = proper_name.unwrap_or(name);
            mail = proper_mail.unwrap_or(mail);
        }
    }
    match part {
        b'n' | b'N' => {
            out.extend_from_slice(name);
            return 2;
        }
        b'e' | b'E' => {
            out.extend_from_slice(mail);
            return 2;
        }
        b'l' | b'L' => {
            let local = mail.iter().position(|&b| b == b'@').unwrap_or(mail.len());
            out.extend_from_slice(&mail[..local]);
            return 2;
        }
        _ => {}
    }
    let Some((date, tz)) = split.date else {
        return skip(part);
    };
    let digits = &ident[date.clone()];
    let mode = match part {
        b't' => {
            out.extend_from_slice(digits);
            return 2;
        }
        b'd' => DateMode::Normal,
        b'D' => DateMode::Rfc2822,
        b'i' => DateMode::Iso,
        b'I' => DateMode::IsoStrict,
        b's' => DateMode::Short,
        // Relative and human dates (of the time they are made) are left as
        // written.
        b'r' | b'h' => return 0,
        _ => return skip(part),
    };
    // git's `strtoumax`, saturating; a time past `time_t` is 0 in UTC.
    let time = digits.iter().fold(0u64, |n, &b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    let (time, tz) = match i64::try_from(time) {
        Ok(time) if time < i64::MAX => (time, tz.map_or(0, |tz| parse_tz(&ident[tz]))),
        _ => (0, 0),
    };
    out.extend_from_slice(show_date(time, tz, mode).as_bytes());
    2
}

/// The parts of an ident line git's `split_ident_line` finds.
struct Ident {
    name_end: usize,
    mail: std::ops::Range<usize>,
    /// The date's digits and the time zone's sign and digits.
    date: Option<(std::ops::Range<usize>, Option<std::ops::Range<usize>>)>,
}

fn split_ident(line: &[u8]) -> Option<Ident> {
    let mail_begin = line.iter().position(|&b| b == b'<')? + 1;
    let name_end = line[..mail_begin - 1]
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(0, |n| n + 1);
    let mail_end = mail_begin + line[mail_begin..].iter().position(|&b| b == b'>')?;
    // The last `>` of the line: a broken mail may hold another.
    let last = line.iter().rposition(|&b| b == b'>').unwrap_or(mail_end);
    let mut at = last + 1;
    while at < line.len() && is_space(line[at]) {
        at += 1;
    }
    let digits = |from: usize| {
        line[from.min(line.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let date = (|| {
        let span = digits(at);
        if at >= line.len() || span == 0 {
            return None;
        }
        let date = at..at + span;
        let mut tz = date.end;
        while tz < line.len() && is_space(line[tz]) {
            tz += 1;
        }
        if tz >= line.len() || !matches!(line[tz], b'+' | b'-') {
            return None;
        }
        let span = digits(tz + 1);
        (span > 0).then(|| (date, Some(tz..tz + 1 + span)))
    })();
    Some(Ident {
        name_end,
        mail: mail_begin..mail_end,
        date,
    })
}

/// git's `strtol` of a time zone, as `show_ident_date` takes it (`+0100` is
/// 100; out of `int`'s range is 0).
fn parse_tz(text: &[u8]) -> i64 {
    let negative = text.first() == Some(&b'-');
    let mut value: i64 = 0;
    for &b in &text[1..] {
        value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    let value = if negative { -value } else { value };
    if value >= i64::from(i32::MAX) || value <= i64::from(i32::MIN) {
        0
    } else {
        value
    }
}

#[derive(Clone, Copy)]
enum DateMode {
    Normal,
    Rfc2822,
    Iso,
    IsoStrict,
    Short,
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// git's `show_date` in the time zone the ident gives.
fn show_date(time: i64, tz: i64, mode: DateMode) -> String {
    let minutes = (tz.abs() / 100) * 60 + tz.abs() % 100;
    let minutes = if tz < 0 { -minutes } else { minutes };
    // git refuses a time its zone puts before 1970; it shows 1970 here.
    let (local, tz) = match time.checked_add(minutes * 60) {
        Some(local) if local >= 0 => (local, tz),
        _ => (0, 0),
    };
    let mut c = crate::civil::civil(local);
    // Past `struct tm`'s years git shows the epoch.
    let (local, tz) = if c.year - 1900 > i64::from(i32::MAX) {
        c = crate::civil::civil(0);
        (0, 0)
    } else {
        (local, tz)
    };
    let weekday = WEEKDAYS[(local.div_euclid(86_400) + 4).rem_euclid(7) as usize];
    let month = MONTHS[(c.month - 1) as usize];
    match mode {
        DateMode::Short => format!("{:04}-{:02}-{:02}", c.year, c.month, c.day),
        DateMode::Iso => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {tz:+05}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ),
        DateMode::IsoStrict => {
            let zone = if tz == 0 {
                "Z".to_string()
            } else {
                let sign = if tz >= 0 { '+' } else { '-' };
                format!("{sign}{:02}:{:02}", tz.abs() / 100, tz.abs() % 100)
            };
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
                c.year, c.month, c.day, c.hour, c.minute, c.second
            )
        }
        DateMode::Rfc2822 => format!(
            "{weekday}, {} {month} {} {:02}:{:02}:{:02} {tz:+05}",
            c.day, c.year, c.hour, c.minute, c.second
        ),
        DateMode::Normal => {
            // git hides a zone of -0001 (its "no zone" marker).
            let zone = if tz == -1 {
                String::new()
            } else {
                format!(" {tz:+05}")
            };
            format!(
                "{weekday} {month} {} {:02}:{:02}:{:02} {}{zone}",
                c.day, c.hour, c.minute, c.second, c.year
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_shown_as_git_shows_them() {
        // 2005-04-07 22:13:13 UTC, shown in +0200 and -0730.
        let t = 1_112_911_993;
        assert_eq!(
            show_date(t, 200, DateMode::Normal),
            "Fri Apr 8 00:13:13 2005 +0200"
        );
        assert_eq!(
            show_date(t, -730, DateMode::Rfc2822),
            "Thu, 7 Apr 2005 14:43:13 -0730"
        );
        assert_eq!(
            show_date(t, 200, DateMode::Iso),
            "2005-04-08 00:13:13 +0200"
        );
        assert_eq!(
            show_date(t, -730, DateMode::IsoStrict),
            "2005-04-07T14:43:13-07:30"
        );
        assert_eq!(show_date(t, 0, DateMode::IsoStrict), "2005-04-07T22:13:13Z");
        assert_eq!(show_date(t, 200, DateMode::Short), "2005-04-08");
    }

    #[test]
    fn sanitized_subjects_are_git_s() {
        let mut out = Vec::new();
        sanitized_subject(b"Fix: the  parser... (again)!", &mut out);
        assert_eq!(out, b"Fix-the-parser.-again");
    }
}
