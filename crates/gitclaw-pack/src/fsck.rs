//! Git's fsck checks on pushed objects: what `git fsck` (and a receiving
//! git with `receive.fsckObjects`) finds wrong with a tree, commit or tag
//! that still parses.
//!
//! Two levels past [`FsckLevel::Off`]. [`FsckLevel::Safe`] refuses the tree
//! entries that make a checkout write where it must not: `.git` in any case,
//! with trailing dots or spaces, as the NTFS short name `git~1` or with the
//! code points HFS+ ignores; `.` and `..`; empty names; names holding `/`
//! (or, on Windows, `\` before a `.git`); a symbolic link named
//! `.gitmodules`. [`FsckLevel::Strict`] adds the rest of git's cheap checks:
//! file modes, sorting and duplicates in trees, the header lines of commits
//! and tags. Each problem carries git's own message id (`hasDotgit`,
//! `treeNotSorted`…), so a user can look it up as `git help fsck` names it.
//!
//! Not here: parsing objects for their references (the caller's), checks
//! that need more than one object (`.gitmodules` contents, connectivity).
//! A tree entry's full path is not known here (trees are checked one by
//! one, without the commit that reaches them), so a problem names the tree
//! and the entry, as `git fsck` does.

use gix_hash::{oid, ObjectId};
use gix_object::Kind;
use gix_validate::path::component;

/// Which of git's fsck checks a pushed object must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsckLevel {
    /// None beyond parsing.
    Off,
    /// Tree entries git refuses to check out.
    #[default]
    Safe,
    /// [`FsckLevel::Safe`] and the rest of git's cheap tree, commit and tag
    /// checks, as `git fsck --strict`.
    Strict,
}

impl FsckLevel {
    /// Every level by its name, in order of strictness.
    pub const NAMES: [(&'static str, FsckLevel); 3] = [
        ("off", FsckLevel::Off),
        ("safe", FsckLevel::Safe),
        ("strict", FsckLevel::Strict),
    ];

    /// The level called `name` (`off`, `safe`, `strict`).
    pub fn from_name(name: &str) -> Option<FsckLevel> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, level)| *level)
    }

    /// The name [`FsckLevel::from_name`] reads.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, level)| *level == self)
            .map_or("safe", |(n, _)| n)
    }
}

/// An object that fails one of git's fsck checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {oid}: {check}: {detail}")]
pub struct FsckError {
    /// The object.
    pub oid: ObjectId,
    /// Its type.
    pub kind: Kind,
    /// Git's message id for the check (`hasDotgit`, `badTimezone`…).
    pub check: &'static str,
    /// What is wrong, naming the offending tree entry where there is one.
    pub detail: String,
}

/// A problem before it is tied to its object: message id and detail.
type Problem = (&'static str, String);

/// Checks the object `id` of type `kind` whose content is `data`.
pub fn check_object(id: &oid, kind: Kind, data: &[u8], level: FsckLevel) -> Result<(), FsckError> {
    let result = match (level, kind) {
        (FsckLevel::Off, _) | (_, Kind::Blob) => Ok(()),
        (_, Kind::Tree) => check_tree(data, level == FsckLevel::Strict),
        (FsckLevel::Safe, _) => Ok(()),
        (FsckLevel::Strict, Kind::Commit) => check_commit(data),
        (FsckLevel::Strict, Kind::Tag) => check_tag(data),
    };
    result.map_err(|(check, detail)| FsckError {
        oid: id.to_owned(),
        kind,
        check,
        detail,
    })
}

/// Longest tree entry name `git fsck` takes without `largePathname`.
const MAX_ENTRY_NAME_BYTES: usize = 4096;

/// Longest piece of an entry name quoted in a message.
const SHOW_MAX: usize = 100;

/// An entry name as printable one-line text, quoted.
fn show(name: &[u8]) -> String {
    let cut = &name[..name.len().min(SHOW_MAX)];
    let more = if name.len() > SHOW_MAX { "..." } else { "" };
    format!("'{}{more}'", cut.escape_ascii())
}

/// Tree problems in the order git reports them (the first found wins);
/// `gitmodulesSymlink`, which git reports as it meets it, sits with the
/// name checks.
const TREE_CHECKS: [&str; 12] = [
    "nullSha1",
    "fullPathname",
    "emptyName",
    "hasDot",
    "hasDotdot",
    "hasDotgit",
    "gitmodulesSymlink",
    "largePathname",
    "zeroPaddedFilemode",
    "badFilemode",
    "duplicateEntries",
    "treeNotSorted",
];

/// Records the first occurrence of each tree problem.
struct TreeProblems([Option<String>; TREE_CHECKS.len()]);

impl TreeProblems {
    fn note(&mut self, check: &'static str, detail: impl FnOnce() -> String) {
        if let Some(slot) = TREE_CHECKS.iter().position(|c| *c == check) {
            self.0[slot].get_or_insert_with(detail);
        }
    }

    fn first(self) -> Result<(), Problem> {
        match TREE_CHECKS
            .iter()
            .zip(self.0)
            .find_map(|(c, d)| Some((*c, d?)))
        {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }
}

/// One raw tree entry.
struct Entry<'a> {
    mode_text: &'a [u8],
    mode: u32,
    name: &'a [u8],
    oid: &'a [u8],
}

impl Entry<'_> {
    fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }
}

/// Splits the next `<octal mode> <name>\0<20-byte id>` entry off `data`.
fn next_entry(data: &[u8]) -> Result<(Entry<'_>, &[u8]), Problem> {
    let bad = |why: &str| ("badTree", format!("cannot be parsed as a tree: {why}"));
    let space = data
        .iter()
        .position(|&b| b == b' ')
        .ok_or_else(|| bad("no mode"))?;
    let mode_text = &data[..space];
    if mode_text.is_empty() || mode_text.len() > 7 {
        return Err(bad("malformed mode"));
    }
    let mut mode = 0u32;
    for &b in mode_text {
        if !(b'0'..=b'7').contains(&b) {
            return Err(bad("malformed mode"));
        }
        mode = (mode << 3) | u32::from(b - b'0');
    }
    let rest = &data[space + 1..];
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| bad("unterminated name"))?;
    let name = &rest[..nul];
    let rest = &rest[nul + 1..];
    if rest.len() < 20 {
        return Err(bad("truncated object id"));
    }
    let (oid, rest) = rest.split_at(20);
    Ok((
        Entry {
            mode_text,
            mode,
            name,
            oid,
        },
        rest,
    ))
}

/// Git's tree order: names compare as bytes, a directory's as if it ended in `/`.
fn tree_order(a: &Entry<'_>, b: &Entry<'_>) -> std::cmp::Ordering {
    let len = a.name.len().min(b.name.len());
    a.name[..len].cmp(&b.name[..len]).then_with(|| {
        let end = |e: &Entry<'_>| {
            e.name
                .get(len)
                .copied()
                .unwrap_or(if e.is_dir() { b'/' } else { 0 })
        };
        end(a).cmp(&end(b))
    })
}

/// The checks git makes before checkout may write a file system path.
fn component_options() -> component::Options {
    component::Options {
        // Windows device names and characters are a checkout's concern on
        // Windows alone; git's fsck does not refuse them either.
        protect_windows: false,
        protect_hfs: true,
        protect_ntfs: true,
    }
}

fn check_entry_name(entry: &Entry<'_>, problems: &mut TreeProblems) {
    let mode = entry.is_symlink().then_some(component::Mode::Symlink);
    let name = entry.name;
    match gix_validate::path::component(name.into(), mode, component_options()) {
        Ok(_) => {}
        Err(component::Error::Empty) => {
            problems.note("emptyName", || "contains empty pathname".into())
        }
        Err(component::Error::Relative) if name == b"." => {
            problems.note("hasDot", || "contains '.'".into())
        }
        Err(component::Error::Relative) => problems.note("hasDotdot", || "contains '..'".into()),
        Err(component::Error::PathSeparator) => problems.note("fullPathname", || {
            format!("contains full pathname {}", show(name))
        }),
        Err(component::Error::DotGitDir) => {
            problems.note("hasDotgit", || format!("contains '.git' as {}", show(name)))
        }
        Err(component::Error::SymlinkedGitModules) => problems.note("gitmodulesSymlink", || {
            format!(".gitmodules is a symbolic link: {}", show(name))
        }),
        Err(_) => {}
    }
    // Windows takes `\` as a separator: `a\.git` writes into `a/.git`.
    if name.contains(&b'\\') {
        for piece in name.split(|&b| b == b'\\') {
            match gix_validate::path::component(piece.into(), mode, component_options()) {
                Err(component::Error::DotGitDir) => {
                    problems.note("hasDotgit", || format!("contains '.git' as {}", show(name)))
                }
                Err(component::Error::SymlinkedGitModules) => problems
                    .note("gitmodulesSymlink", || {
                        format!(".gitmodules is a symbolic link: {}", show(name))
                    }),
                _ => {}
            }
        }
    }
}

fn check_tree(mut data: &[u8], strict: bool) -> Result<(), Problem> {
    let mut problems = TreeProblems(Default::default());
    let mut previous: Option<Entry<'_>> = None;
    let mut names = std::collections::HashSet::new();
    while !data.is_empty() {
        let (entry, rest) = next_entry(data)?;
        data = rest;
        check_entry_name(&entry, &mut problems);
        if strict {
            let name = entry.name;
            if entry.oid.iter().all(|&b| b == 0) {
                problems.note("nullSha1", || {
                    format!("contains entries pointing to null sha1: {}", show(name))
                });
            }
            if name.len() > MAX_ENTRY_NAME_BYTES {
                problems.note("largePathname", || {
                    format!("contains a path of {} bytes: {}", name.len(), show(name))
                });
            }
            if entry.mode_text.first() == Some(&b'0') {
                problems.note("zeroPaddedFilemode", || {
                    format!(
                        "contains zero-padded file mode {} for {}",
                        show(entry.mode_text),
                        show(name)
                    )
                });
            }
            if !matches!(
                entry.mode,
                0o100644 | 0o100755 | 0o120000 | 0o040000 | 0o160000
            ) {
                problems.note("badFilemode", || {
                    format!(
                        "contains bad file mode {} for {}",
                        show(entry.mode_text),
                        show(name)
                    )
                });
            }
            if !names.insert(name) {
                problems.note("duplicateEntries", || {
                    format!("contains duplicate file entries: {}", show(name))
                });
            }
            if let Some(previous) = &previous {
                if previous.name != name && tree_order(previous, &entry).is_ge() {
                    problems.note("treeNotSorted", || {
                        format!(
                            "not properly sorted: {} before {}",
                            show(previous.name),
                            show(name)
                        )
                    });
                }
            }
            previous = Some(entry);
        }
    }
    problems.first()
}

/// Git's `verify_headers`: no NUL in the header, whose last line ends.
fn check_headers(data: &[u8]) -> Result<(), Problem> {
    for (i, &b) in data.iter().enumerate() {
        match b {
            0 => {
                return Err((
                    "nulInHeader",
                    format!("unterminated header: NUL at offset {i}"),
                ))
            }
            b'\n' if data.get(i + 1) == Some(&b'\n') => return Ok(()),
            _ => {}
        }
    }
    if data.last() == Some(&b'\n') {
        Ok(())
    } else {
        Err(("unterminatedHeader", "unterminated header".into()))
    }
}

/// `<40 hex digits>\n` at the start of `data`; the rest after it.
fn hex_line(data: &[u8]) -> Option<&[u8]> {
    let hex = data.get(..40)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) || data.get(40) != Some(&b'\n') {
        return None;
    }
    Some(&data[41..])
}

/// Git's `fsck_ident`: `Name <email> <seconds> <+hhmm>\n`; returns what follows.
fn check_ident(line: &[u8]) -> Result<&[u8], Problem> {
    let bad = |check: &'static str, what: &str| {
        (check, format!("invalid author/committer line - {what}"))
    };
    let end = line
        .iter()
        .position(|&b| b == b'\n')
        .map_or(line.len(), |n| n + 1);
    let rest = &line[end..];
    let p = &line[..end];
    if p.first() == Some(&b'<') {
        return Err(bad("missingNameBeforeEmail", "missing space before email"));
    }
    let open = p.iter().position(|&b| matches!(b, b'<' | b'>' | b'\n'));
    let open = match open.map(|i| (i, p[i])) {
        Some((_, b'>')) => return Err(bad("badName", "bad name")),
        Some((i, b'<')) => i,
        _ => return Err(bad("missingEmail", "missing email")),
    };
    if open == 0 || p[open - 1] != b' ' {
        return Err(bad("missingSpaceBeforeEmail", "missing space before email"));
    }
    let after = &p[open + 1..];
    let close = match after.iter().position(|&b| matches!(b, b'<' | b'>' | b'\n')) {
        Some(i) if after[i] == b'>' => i,
        _ => return Err(bad("badEmail", "bad email")),
    };
    let p = &after[close + 1..];
    let Some(p) = p.strip_prefix(b" ") else {
        return Err(bad("missingSpaceBeforeDate", "missing space before date"));
    };
    if p.first() == Some(&b'0') && p.get(1) != Some(&b' ') {
        return Err(bad("zeroPaddedDate", "zero-padded date"));
    }
    let digits = p.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(bad("badDate", "bad date"));
    }
    let seconds = p[..digits].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    if seconds.is_none_or(|s| s >= i64::MAX as u64) {
        return Err(bad("badDateOverflow", "date causes integer overflow"));
    }
    let Some(zone) = p[digits..].strip_prefix(b" ") else {
        return Err(bad("badDate", "bad date"));
    };
    let zone_ok = zone.len() >= 6
        && matches!(zone[0], b'+' | b'-')
        && zone[1..5].iter().all(u8::is_ascii_digit)
        && zone[5] == b'\n';
    if !zone_ok {
        return Err(bad("badTimezone", "bad time zone"));
    }
    Ok(rest)
}

fn check_commit(data: &[u8]) -> Result<(), Problem> {
    check_headers(data)?;
    let Some(rest) = data.strip_prefix(b"tree ") else {
        return Err((
            "missingTree",
            "invalid format - expected 'tree' line".into(),
        ));
    };
    let mut rest = hex_line(rest).ok_or_else(|| {
        (
            "badTreeSha1",
            "invalid 'tree' line format - bad sha1".to_string(),
        )
    })?;
    while let Some(line) = rest.strip_prefix(b"parent ") {
        rest = hex_line(line).ok_or_else(|| {
            (
                "badParentSha1",
                "invalid 'parent' line format - bad sha1".to_string(),
            )
        })?;
    }
    let mut authors = 0;
    while let Some(line) = rest.strip_prefix(b"author ") {
        authors += 1;
        rest = check_ident(line)?;
    }
    match authors {
        0 => {
            return Err((
                "missingAuthor",
                "invalid format - expected 'author' line".into(),
            ))
        }
        1 => {}
        _ => {
            return Err((
                "multipleAuthors",
                "invalid format - multiple 'author' lines".into(),
            ))
        }
    }
    let Some(line) = rest.strip_prefix(b"committer ") else {
        return Err((
            "missingCommitter",
            "invalid format - expected 'committer' line".into(),
        ));
    };
    check_ident(line)?;
    if data.contains(&0) {
        return Err(("nulInCommit", "NUL byte in the commit object body".into()));
    }
    Ok(())
}

fn check_tag(data: &[u8]) -> Result<(), Problem> {
    check_headers(data)?;
    let Some(rest) = data.strip_prefix(b"object ") else {
        return Err((
            "missingObject",
            "invalid format - expected 'object' line".into(),
        ));
    };
    let rest = hex_line(rest).ok_or_else(|| {
        (
            "badObjectSha1",
            "invalid 'object' line format - bad sha1".to_string(),
        )
    })?;
    let Some(rest) = rest.strip_prefix(b"type ") else {
        return Err((
            "missingTypeEntry",
            "invalid format - expected 'type' line".into(),
        ));
    };
    let Some(eol) = rest.iter().position(|&b| b == b'\n') else {
        return Err((
            "missingType",
            "invalid format - unexpected end after 'type' line".into(),
        ));
    };
    if Kind::from_bytes(&rest[..eol]).is_err() {
        return Err(("badType", "invalid 'type' value".into()));
    }
    let Some(rest) = rest[eol + 1..].strip_prefix(b"tag ") else {
        return Err((
            "missingTagEntry",
            "invalid format - expected 'tag' line".into(),
        ));
    };
    let Some(eol) = rest.iter().position(|&b| b == b'\n') else {
        return Err((
            "missingTag",
            "invalid format - unexpected end after 'type' line".into(),
        ));
    };
    // Early tags have no tagger; git only notes that.
    if let Some(line) = rest[eol + 1..].strip_prefix(b"tagger ") {
        check_ident(line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

    fn id() -> ObjectId {
        ObjectId::from_hex(b"1234567890123456789012345678901234567890").unwrap()
    }

    /// A raw tree of `(mode, name)` entries, all pointing at the empty blob.
    fn tree(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let blob = ObjectId::from_hex(BLOB.as_bytes()).unwrap();
        let mut out = Vec::new();
        for (mode, name) in entries {
            out.extend_from_slice(mode.as_bytes());
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(blob.as_bytes());
        }
        out
    }

    fn tree_problem(entries: &[(&str, &[u8])], level: FsckLevel) -> Option<(&'static str, String)> {
        check_object(&id(), Kind::Tree, &tree(entries), level)
            .err()
            .map(|e| (e.check, e.detail))
    }

    fn check_of(entries: &[(&str, &[u8])], level: FsckLevel) -> Option<&'static str> {
        tree_problem(entries, level).map(|(check, _)| check)
    }

    #[test]
    fn levels_have_names() {
        for (name, level) in FsckLevel::NAMES {
            assert_eq!(FsckLevel::from_name(name), Some(level));
            assert_eq!(level.name(), name);
        }
        assert_eq!(FsckLevel::from_name("paranoid"), None);
        assert_eq!(FsckLevel::default(), FsckLevel::Safe);
    }

    #[test]
    fn ordinary_trees_pass_every_level() {
        let entries: &[(&str, &[u8])] = &[
            ("100644", b".gitignore"),
            ("100644", b".gitmodules"),
            ("40000", b"a"),
            ("100755", b"a.sh"),
            ("120000", b"link"),
            ("160000", b"sub"),
            ("100644", b"\xc3\xa9t\xc3\xa9"),
            ("100644", b".github"),
        ];
        let mut sorted = entries.to_vec();
        sorted.sort_by(|a, b| {
            let entry = |(mode, name): &(&str, &[u8])| {
                let mut key = name.to_vec();
                if *mode == "40000" {
                    key.push(b'/');
                }
                key
            };
            entry(a).cmp(&entry(b))
        });
        for level in [FsckLevel::Off, FsckLevel::Safe, FsckLevel::Strict] {
            assert_eq!(check_of(&sorted, level), None, "{level:?}");
        }
        assert_eq!(check_of(&[], FsckLevel::Strict), None);
    }

    #[test]
    fn dot_git_in_every_disguise_is_refused() {
        for name in [
            &b".git"[..],
            b".GIT",
            b".Git",
            b".git.",
            b".git ",
            b".git. . ",
            b"git~1",
            b"GIT~1",
            b".git::$INDEX_ALLOCATION",
            // HFS+ ignores zero-width joiners and the like.
            ".g\u{200c}it".as_bytes(),
            "\u{feff}.git".as_bytes(),
            ".GI\u{200d}T".as_bytes(),
            // Windows separates at `\`.
            b"a\\.git",
            b".git\\hooks",
        ] {
            let problem = tree_problem(&[("40000", name)], FsckLevel::Safe);
            let (check, detail) = problem.unwrap_or_else(|| panic!("{name:?} accepted"));
            assert_eq!(check, "hasDotgit", "{name:?}");
            assert!(detail.starts_with("contains '.git' as '"), "{detail}");
        }
        assert_eq!(
            tree_problem(&[("100644", b".GIT ")], FsckLevel::Safe),
            Some(("hasDotgit", "contains '.git' as '.GIT '".into()))
        );
        // Lookalikes that are not `.git` pass.
        for name in [
            &b".gitx"[..],
            b"git",
            b".git~1",
            b"x.git",
            b"git~2",
            b".gitignore",
        ] {
            assert_eq!(
                check_of(&[("100644", name)], FsckLevel::Safe),
                None,
                "{name:?}"
            );
        }
    }

    #[test]
    fn path_tricks_are_refused_with_git_message_ids() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b".", "hasDot", "contains '.'"),
            (b"..", "hasDotdot", "contains '..'"),
            (b"", "emptyName", "contains empty pathname"),
            (b"a/b", "fullPathname", "contains full pathname 'a/b'"),
            (b"/etc", "fullPathname", "contains full pathname '/etc'"),
            (b"../x", "fullPathname", "contains full pathname '../x'"),
        ];
        for (name, check, detail) in cases {
            assert_eq!(
                tree_problem(&[("100644", name)], FsckLevel::Safe),
                Some((*check, detail.to_string())),
                "{name:?}"
            );
        }
        assert_eq!(
            check_of(&[("120000", b".gitmodules")], FsckLevel::Safe),
            Some("gitmodulesSymlink")
        );
        assert_eq!(
            check_of(&[("120000", b".GITMODULES.")], FsckLevel::Safe),
            Some("gitmodulesSymlink")
        );
        // Off checks nothing.
        assert_eq!(check_of(&[("40000", b".git")], FsckLevel::Off), None);
    }

    #[test]
    fn the_first_problem_in_git_order_is_reported() {
        // git reports fullPathname before hasDotgit, whatever the entry order.
        let entries: &[(&str, &[u8])] = &[("40000", b".git"), ("100644", b"a/b")];
        assert_eq!(check_of(entries, FsckLevel::Safe), Some("fullPathname"));
        let error = check_object(&id(), Kind::Tree, &tree(entries), FsckLevel::Safe).unwrap_err();
        assert_eq!(
            error.to_string(),
            "tree 1234567890123456789012345678901234567890: fullPathname: contains full pathname 'a/b'"
        );
    }

    #[test]
    fn strict_checks_modes_order_and_duplicates() {
        let zero_padded: &[(&str, &[u8])] = &[("040000", b"dir")];
        assert_eq!(check_of(zero_padded, FsckLevel::Safe), None);
        assert_eq!(
            tree_problem(zero_padded, FsckLevel::Strict),
            Some((
                "zeroPaddedFilemode",
                "contains zero-padded file mode '040000' for 'dir'".into()
            ))
        );
        for mode in ["100664", "100666", "644", "100000", "170000"] {
            assert_eq!(
                check_of(&[(mode, b"f")], FsckLevel::Strict),
                Some("badFilemode"),
                "{mode}"
            );
        }
        assert_eq!(
            tree_problem(&[("100644", b"a"), ("100644", b"a")], FsckLevel::Strict),
            Some((
                "duplicateEntries",
                "contains duplicate file entries: 'a'".into()
            ))
        );
        // A file and a directory of one name are duplicates too, though
        // the order keeps them apart.
        assert_eq!(
            check_of(
                &[("100644", b"a"), ("100644", b"a.b"), ("40000", b"a")],
                FsckLevel::Strict
            ),
            Some("duplicateEntries")
        );
        assert_eq!(
            tree_problem(&[("100644", b"b"), ("100644", b"a")], FsckLevel::Strict),
            Some((
                "treeNotSorted",
                "not properly sorted: 'b' before 'a'".into()
            ))
        );
        // A directory sorts as if its name ended in '/': "a.b" < "a/" .
        assert_eq!(
            check_of(&[("40000", b"a"), ("100644", b"a.b")], FsckLevel::Strict),
            Some("treeNotSorted")
        );
        assert_eq!(
            check_of(&[("100644", b"a"), ("100644", b"a.b")], FsckLevel::Strict),
            None
        );
        assert_eq!(
            check_of(&[("100644", b"b"), ("100644", b"a")], FsckLevel::Safe),
            None
        );
        let long = vec![b'x'; MAX_ENTRY_NAME_BYTES + 1];
        assert_eq!(
            check_of(&[("100644", &long)], FsckLevel::Strict),
            Some("largePathname")
        );
        let mut null = tree(&[("100644", b"f")]);
        let n = null.len();
        null[n - 20..].fill(0);
        let error = check_object(&id(), Kind::Tree, &null, FsckLevel::Strict).unwrap_err();
        assert_eq!(error.check, "nullSha1");
    }

    #[test]
    fn malformed_trees_are_bad_trees() {
        for data in [
            &b"100644"[..],
            b"10x644 a\0",
            b" a\0",
            b"100644 a",
            b"100644 a\0short",
        ] {
            let error = check_object(&id(), Kind::Tree, data, FsckLevel::Safe).unwrap_err();
            assert_eq!(error.check, "badTree", "{data:?}");
        }
    }

    const TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    const WHO: &str = "A U Thor <author@example.com> 1700000000 +0100";

    fn commit_problem(text: &str) -> Option<&'static str> {
        check_object(&id(), Kind::Commit, text.as_bytes(), FsckLevel::Strict)
            .err()
            .map(|e| e.check)
    }

    #[test]
    fn strict_checks_commit_headers() {
        let good =
            format!("tree {TREE}\nparent {TREE}\nauthor {WHO}\ncommitter {WHO}\n\nmessage\n");
        assert_eq!(commit_problem(&good), None);
        assert_eq!(
            check_object(&id(), Kind::Commit, b"garbage", FsckLevel::Safe),
            Ok(())
        );
        let cases = [
            (format!("author {WHO}\ncommitter {WHO}\n\n"), "missingTree"),
            (
                format!("tree 123\nauthor {WHO}\ncommitter {WHO}\n\n"),
                "badTreeSha1",
            ),
            (
                format!("tree {TREE}\nparent zz\nauthor {WHO}\ncommitter {WHO}\n\n"),
                "badParentSha1",
            ),
            (format!("tree {TREE}\ncommitter {WHO}\n\n"), "missingAuthor"),
            (
                format!("tree {TREE}\nauthor {WHO}\nauthor {WHO}\ncommitter {WHO}\n\n"),
                "multipleAuthors",
            ),
            (format!("tree {TREE}\nauthor {WHO}\n\n"), "missingCommitter"),
            (
                format!("tree {TREE}\nauthor {WHO}\ncommitter {WHO}"),
                "unterminatedHeader",
            ),
            (
                format!("tree {TREE}\nauthor {WHO}\0\ncommitter {WHO}\n\n"),
                "nulInHeader",
            ),
            (
                format!("tree {TREE}\nauthor {WHO}\ncommitter {WHO}\n\nbody\0"),
                "nulInCommit",
            ),
        ];
        for (text, check) in cases {
            assert_eq!(commit_problem(&text), Some(check), "{text:?}");
        }
        let idents = [
            ("<a@b> 1 +0000", "missingNameBeforeEmail"),
            ("A > 1 +0000", "badName"),
            ("A 1 +0000", "missingEmail"),
            ("A<a@b> 1 +0000", "missingSpaceBeforeEmail"),
            ("A <a@b 1 +0000", "badEmail"),
            ("A <a@b>1 +0000", "missingSpaceBeforeDate"),
            ("A <a@b> 01 +0000", "zeroPaddedDate"),
            ("A <a@b> x +0000", "badDate"),
            ("A <a@b> 1+0000", "badDate"),
            ("A <a@b> 99999999999999999999 +0000", "badDateOverflow"),
            ("A <a@b> 1 0000", "badTimezone"),
            ("A <a@b> 1 +00", "badTimezone"),
            ("A <a@b> 1 +0000 extra", "badTimezone"),
        ];
        for (ident, check) in idents {
            let text = format!("tree {TREE}\nauthor {ident}\ncommitter {WHO}\n\n");
            assert_eq!(commit_problem(&text), Some(check), "{ident}");
        }
        // git accepts a zero date.
        let text = format!("tree {TREE}\nauthor A <a@b> 0 +0000\ncommitter {WHO}\n\n");
        assert_eq!(commit_problem(&text), None);
    }

    fn tag_problem(text: &str) -> Option<&'static str> {
        check_object(&id(), Kind::Tag, text.as_bytes(), FsckLevel::Strict)
            .err()
            .map(|e| e.check)
    }

    #[test]
    fn strict_checks_tag_headers() {
        let good = format!("object {TREE}\ntype tree\ntag v1\ntagger {WHO}\n\nmessage\n");
        assert_eq!(tag_problem(&good), None);
        // Early tags have no tagger.
        assert_eq!(
            tag_problem(&format!("object {TREE}\ntype tree\ntag v1\n\n")),
            None
        );
        let cases = [
            ("type tree\ntag v1\n\n".to_string(), "missingObject"),
            (
                "object 12\ntype tree\ntag v1\n\n".to_string(),
                "badObjectSha1",
            ),
            (format!("object {TREE}\ntag v1\n\n"), "missingTypeEntry"),
            (format!("object {TREE}\ntype tree"), "unterminatedHeader"),
            (format!("object {TREE}\ntype blobby\ntag v1\n\n"), "badType"),
            (format!("object {TREE}\ntype tree\n\n"), "missingTagEntry"),
            (
                format!("object {TREE}\ntype tree\ntag v1\ntagger nobody\n\n"),
                "missingEmail",
            ),
        ];
        for (text, check) in cases {
            assert_eq!(tag_problem(&text), Some(check), "{text:?}");
        }
    }
}
