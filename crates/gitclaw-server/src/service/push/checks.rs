//! The checks every ref update of a push passes before anything is stored: a
//! name git would accept (and not longer than clients can keep), no duplicates,
//! and a new tip that exists and, for a branch, is a commit.

use std::path::Path;

use gitclaw_pack::odb::{DecodeState, ObjectDb, ObjectReader, PackHandle};
use gitclaw_pack::{Kind, ObjectId, PackError};
use gitclaw_protocol::receive_pack::{RefCommand, RefStatus};

/// Longest ref name a push may create, in bytes (hosting services cap names
/// near this too). It keeps every advertisement line far below a pkt-line's
/// 65516 bytes: `<oid> <name>\0<capabilities>` and, for HEAD's target,
/// `symref=HEAD:<name>` next to them.
pub const MAX_REF_NAME_BYTES: usize = 1024;

/// Longest component of a ref name, in bytes: the file-name limit of the
/// file systems git clients keep refs on, so a longer one could not be
/// fetched anyway.
pub const MAX_REF_COMPONENT_BYTES: usize = 255;

/// Refuse malformed commands up front: bad names and duplicates. (A command
/// with neither old nor new value deletes a ref that is not there, as in git.)
pub fn check_commands(commands: &[RefCommand], statuses: &mut [Option<RefStatus>]) {
    let mut seen = std::collections::HashSet::new();
    for (command, status) in commands.iter().zip(statuses.iter_mut()) {
        if let Some(reason) = ref_name_problem(&command.name) {
            *status = Some(RefStatus::Rejected(reason));
        } else if !seen.insert(command.name.clone()) {
            *status = Some(RefStatus::Rejected("duplicate ref update".into()));
        }
    }
}

/// Why a push may not create or update a ref called `name`, if it may not:
/// what `git check-ref-format` refuses (as git's receive-pack, "funny
/// refname", with the rule broken), names outside `refs/`, and names longer
/// than [`MAX_REF_NAME_BYTES`] or with a component longer than
/// [`MAX_REF_COMPONENT_BYTES`].
pub fn ref_name_problem(name: &str) -> Option<String> {
    if name.len() > MAX_REF_NAME_BYTES {
        return Some(format!(
            "refname too long ({} bytes, at most {MAX_REF_NAME_BYTES})",
            name.len()
        ));
    }
    if let Some(part) = name.split('/').find(|p| p.len() > MAX_REF_COMPONENT_BYTES) {
        return Some(format!(
            "refname component too long ({} bytes, at most {MAX_REF_COMPONENT_BYTES})",
            part.len()
        ));
    }
    let funny = |why: &str| Some(format!("funny refname ({why})"));
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return funny("control character");
    }
    // The parser turns bytes that are not UTF-8 into U+FFFD.
    if name.contains('\u{fffd}') {
        return funny("not UTF-8");
    }
    if !name.starts_with("refs/") {
        return funny("not under refs/");
    }
    if let Err(err) = gix_validate::reference::name(name.as_bytes().into()) {
        let why = err.to_string();
        let mut chars = why.chars();
        let why = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => why,
        };
        return funny(&why);
    }
    None
}

/// What is wrong with refs as stored, for `gitclaw fsck`: names a push
/// would refuse, two names that clash (`refs/heads/a` beside
/// `refs/heads/a/b`: no git client can hold both, and fetching them fails),
/// and a branch that names no commit (`kind_of` gives a stored object's
/// kind). Stored before the push checks refused them, or written behind the
/// server's back; each is said with what to do.
pub fn stored_ref_problems(
    refs: &[(String, ObjectId)],
    mut kind_of: impl FnMut(&ObjectId) -> Result<Option<Kind>, PackError>,
) -> Result<Vec<String>, PackError> {
    let names: std::collections::HashSet<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    let mut problems = Vec::new();
    for (name, id) in refs {
        if let Some(why) = ref_name_problem(name) {
            problems.push(format!("ref {name}: {why}; delete it"));
        }
        // Each directory the name is under, as a ref of its own.
        for (at, _) in name.match_indices('/') {
            let above = &name[..at];
            if names.contains(above) {
                problems.push(format!(
                    "refs {above} and {name} clash: a git client cannot hold both, and fetching them fails; delete one"
                ));
            }
        }
        if name.starts_with("refs/heads/") {
            match kind_of(id)? {
                Some(Kind::Commit) | None => {}
                Some(kind) => problems.push(format!(
                    "branch {name} names {id}, a {kind}, not a commit; move or delete it"
                )),
            }
        }
    }
    Ok(problems)
}

/// What checking the new tips found: per command, `None` when it passes; and
/// what each new tip that is a tag object peels to, as the advertisement
/// shows it (recorded with the push, so no advertisement reads the tags; git
/// peels a tag object under any ref name, `refs/notes/…` as `refs/tags/…`).
pub struct TipChecks {
    pub statuses: Vec<Option<RefStatus>>,
    pub peeled: Vec<(ObjectId, ObjectId)>,
}

/// Check every new tip: it must exist (in the pushed pack or the repository),
/// and a branch must point at a commit.
pub fn tip_checks(
    commands: &[RefCommand],
    db: &ObjectDb,
    new_pack: Option<&Path>,
) -> Result<TipChecks, PackError> {
    let pack = match new_pack {
        Some(path) => Some(PackHandle::open(path)?),
        None => None,
    };
    let mut objects = PushedObjects {
        pack: pack.as_ref(),
        state: DecodeState::default(),
        reader: db.reader(),
    };
    let mut out = TipChecks {
        statuses: Vec::with_capacity(commands.len()),
        peeled: Vec::new(),
    };
    for command in commands {
        if command.new.is_null() {
            out.statuses.push(None);
            continue;
        }
        let kind = objects.kind(&command.new)?;
        out.statuses.push(match kind {
            None => Some(RefStatus::Rejected("missing necessary objects".into())),
            Some(kind) if command.name.starts_with("refs/heads/") && kind != Kind::Commit => Some(
                RefStatus::Rejected("non-commit object cannot be a branch tip".into()),
            ),
            Some(_) => None,
        });
        if kind == Some(Kind::Tag) {
            // A tag whose chain cannot be followed is left to the advertisement.
            if let Some(peeled) = objects.peel(command.new)? {
                out.peeled.push((command.new, peeled));
            }
        }
    }
    Ok(out)
}

/// What the repository's protected-ref rules refuse of `commands` (those with
/// no status yet): deleting a ref a rule protects from deletion, and moving one
/// a rule protects from force-pushes other than from a commit to a commit that
/// has it in its history. Moving a tag (under `refs/tags/`) is always forced,
/// as git's client has it, and so is a move from or to anything but a commit.
/// A refusal names the rule.
pub fn protection_checks(
    rules: &[gitclaw_metadata::ProtectedRef],
    commands: &[RefCommand],
    statuses: &[Option<RefStatus>],
    db: &ObjectDb,
    new_pack: Option<&Path>,
) -> Result<Vec<Option<RefStatus>>, PackError> {
    let mut out = vec![None; commands.len()];
    let mut graph_db = None;
    for ((command, status), refusal) in commands.iter().zip(statuses).zip(out.iter_mut()) {
        if status.is_some() || command.old.is_null() {
            continue;
        }
        let matching = || rules.iter().filter(|rule| rule.matches(&command.name));
        if command.new.is_null() {
            if let Some(rule) = matching().find(|rule| !rule.allow_deletion) {
                *refusal = Some(RefStatus::Rejected(format!(
                    "protected by rule '{}': may not be deleted",
                    rule.pattern
                )));
            }
            continue;
        }
        let Some(rule) = matching().find(|rule| !rule.allow_force_push) else {
            continue;
        };
        // The pushed pack and the repository, opened once for every check.
        let full = match &mut graph_db {
            Some(full) => full,
            None => graph_db.insert(with_pushed_pack(db, new_pack)?),
        };
        let tag = command.name.starts_with("refs/tags/");
        if tag || !is_fast_forward(full, command.old, command.new)? {
            *refusal = Some(RefStatus::Rejected(format!(
                "protected by rule '{}': not a fast-forward (force-push not allowed)",
                rule.pattern
            )));
        }
    }
    Ok(out)
}

/// The repository's objects with the pushed pack's (at `new_pack`) in front:
/// what a push's refs will name once it is committed.
pub fn with_pushed_pack(db: &ObjectDb, new_pack: Option<&Path>) -> Result<ObjectDb, PackError> {
    let mut packs = Vec::with_capacity(db.packs().len() + 1);
    if let Some(path) = new_pack {
        packs.push(std::sync::Arc::new(PackHandle::open(path)?));
    }
    packs.extend(db.packs().iter().cloned());
    Ok(ObjectDb::new(packs, db.loose().clone()))
}

/// Whether `old` and `new` are commits and `new` has `old` in its history.
/// An `old` the repository does not hold passes: the client's idea of the ref
/// is stale, which the commit refuses as such.
pub fn is_fast_forward(db: &ObjectDb, old: ObjectId, new: ObjectId) -> Result<bool, PackError> {
    if !db.contains(&old)? {
        return Ok(true);
    }
    let mut graph = gitclaw_pack::walk::Graph::new(db);
    for id in [old, new] {
        if graph.peel_to_commit(&id)? != Some(id) {
            return Ok(false);
        }
    }
    Ok(gitclaw_pack::walk::unreachable_wants(&mut graph, &[new], &[old])?.is_empty())
}

/// The objects a push may name: the pushed pack's, then the repository's.
struct PushedObjects<'a> {
    pack: Option<&'a PackHandle>,
    state: DecodeState,
    reader: ObjectReader<'a>,
}

impl<'a> PushedObjects<'a> {
    /// Where the object lies in the pushed pack, if it does.
    fn in_pack(&self, id: &ObjectId) -> Result<Option<(&'a PackHandle, u32)>, PackError> {
        match self.pack {
            Some(pack) => Ok(pack.lookup(id)?.map(|index| (pack, index))),
            None => Ok(None),
        }
    }

    /// The object's type, from its header only (a tip may be a big blob).
    fn kind(&mut self, id: &ObjectId) -> Result<Option<Kind>, PackError> {
        match self.in_pack(id)? {
            Some((pack, index)) => Ok(Some(pack.object_header(index, &mut self.state)?.0)),
            None => Ok(self.reader.header(id)?.map(|(kind, _)| kind)),
        }
    }

    /// What the tag `id` peels to: the first object of its chain that is not a
    /// tag. `None` when an object of the chain is missing or does not parse,
    /// or the chain is longer than 64.
    fn peel(&mut self, id: ObjectId) -> Result<Option<ObjectId>, PackError> {
        let mut current = id;
        let mut buf = Vec::new();
        for _ in 0..64 {
            match self.kind(&current)? {
                Some(Kind::Tag) => {}
                Some(_) => return Ok(Some(current)),
                None => return Ok(None),
            }
            buf.clear();
            let found = match self.in_pack(&current)? {
                Some((pack, index)) => {
                    pack.decode(index, &mut buf, &mut self.state)?;
                    true
                }
                None => self.reader.read(&current, &mut buf)?.is_some(),
            };
            if !found {
                return Ok(None);
            }
            // A tag that does not parse (pushed with fsck off) fails no push:
            // the advertisement leaves it unpeeled, as before.
            match gix_object::TagRefIter::from_bytes(&buf, gix_hash::Kind::Sha1).target_id() {
                Ok(target) => current = target,
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_refs_that_clash_are_funny_or_branch_to_no_commit_are_named() {
        let id = |n: u8| ObjectId::from_bytes_or_panic(&[n; 20]);
        let refs: Vec<(String, ObjectId)> = [
            ("refs/heads/a", 1),
            ("refs/heads/a-b", 1),
            ("refs/heads/a/b", 1),
            ("refs/heads/a/b/c", 1),
            ("refs/heads/tree", 2),
            ("refs/tags/tree", 2),
            ("refs/heads/gone", 3),
            ("refs/heads/bad..name", 1),
        ]
        .iter()
        .map(|(n, i)| (n.to_string(), id(*i)))
        .collect();
        let kinds = |oid: &ObjectId| {
            Ok(match oid.as_bytes()[0] {
                1 => Some(Kind::Commit),
                2 => Some(Kind::Tree),
                _ => None,
            })
        };
        let problems = stored_ref_problems(&refs, kinds).unwrap();
        let clash = |a: &str, b: &str| {
            format!("refs {a} and {b} clash: a git client cannot hold both, and fetching them fails; delete one")
        };
        assert_eq!(
            problems,
            vec![
                clash("refs/heads/a", "refs/heads/a/b"),
                clash("refs/heads/a", "refs/heads/a/b/c"),
                clash("refs/heads/a/b", "refs/heads/a/b/c"),
                format!(
                    "branch refs/heads/tree names {}, a tree, not a commit; move or delete it",
                    id(2)
                ),
                format!(
                    "ref refs/heads/bad..name: {}; delete it",
                    ref_name_problem("refs/heads/bad..name").unwrap()
                ),
            ]
        );
        let clean: Vec<(String, ObjectId)> = refs
            .iter()
            .filter(|(n, _)| {
                ["refs/heads/a-b", "refs/heads/a/b/c", "refs/tags/tree"].contains(&n.as_str())
            })
            .cloned()
            .collect();
        assert!(stored_ref_problems(&clean, kinds).unwrap().is_empty());
    }
    use gitclaw_pack::ObjectId;

    fn refused(name: &str) -> String {
        ref_name_problem(name).unwrap_or_else(|| panic!("{name:?} is accepted"))
    }

    #[test]
    fn ref_names_git_accepts_are_accepted() {
        for name in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/ünïcode",
            "refs/pull/1/head",
        ] {
            assert_eq!(ref_name_problem(name), None, "{name}");
        }
        let longest = format!("refs/heads/{}", "a".repeat(MAX_REF_COMPONENT_BYTES));
        assert_eq!(ref_name_problem(&longest), None);
        let parts = vec!["b".repeat(200); 5].join("/");
        let long = format!("refs/heads/{parts}");
        assert!(long.len() <= MAX_REF_NAME_BYTES);
        assert_eq!(ref_name_problem(&long), None);
    }

    #[test]
    fn over_long_ref_names_are_refused_with_the_limit() {
        let name = format!("refs/heads/{}", "b".repeat(65_300));
        assert_eq!(
            refused(&name),
            "refname too long (65311 bytes, at most 1024)"
        );
        let parts = vec!["b".repeat(250); 5].join("/");
        assert!(refused(&format!("refs/heads/{parts}")).starts_with("refname too long"));
        let name = format!("refs/heads/{}", "c".repeat(256));
        assert_eq!(
            refused(&name),
            "refname component too long (256 bytes, at most 255)"
        );
    }

    #[test]
    fn funny_ref_names_are_refused_with_the_rule_broken() {
        assert_eq!(
            refused("refs/heads/a\u{1}b"),
            "funny refname (control character)"
        );
        assert_eq!(
            refused("refs/heads/tab\there"),
            "funny refname (control character)"
        );
        assert_eq!(
            refused("refs/heads/\u{7f}"),
            "funny refname (control character)"
        );
        assert_eq!(refused("refs/heads/\u{fffd}"), "funny refname (not UTF-8)");
        assert_eq!(refused("HEAD"), "funny refname (not under refs/)");
        assert_eq!(refused("main"), "funny refname (not under refs/)");
        for name in [
            "refs/heads/a..b",
            "refs/heads/x.lock",
            "refs/heads/sp ace",
            "refs/heads/end/",
            "refs/heads/a//b",
            "refs/heads/.hidden",
            "refs/heads/a@{1}",
            "refs/heads/star*",
            "refs/heads/colon:",
            "refs/heads/back\\slash",
            "refs/heads/dot.",
        ] {
            let reason = refused(name);
            assert!(reason.starts_with("funny refname ("), "{name}: {reason}");
        }
        assert_eq!(
            refused("refs/heads/a..b"),
            "funny refname (reference name cannot contain repeated dots)"
        );
    }

    #[test]
    fn each_command_gets_its_own_status() {
        let id = ObjectId::from_hex(b"7217a7c7e582c46cec22a130adf4b9d7d950fba0").unwrap();
        let zero = ObjectId::null(gix_hash::Kind::Sha1);
        let command = |name: &str, old: ObjectId, new: ObjectId| RefCommand {
            old,
            new,
            name: name.into(),
        };
        let commands = vec![
            command("refs/heads/ok", zero, id),
            command("refs/heads/bad\u{1}", zero, id),
            command("refs/heads/ok", zero, id),
            command("refs/heads/noop", zero, zero),
        ];
        let mut statuses = vec![None; commands.len()];
        check_commands(&commands, &mut statuses);
        assert_eq!(
            statuses,
            [
                None,
                Some(RefStatus::Rejected(
                    "funny refname (control character)".into()
                )),
                Some(RefStatus::Rejected("duplicate ref update".into())),
                None,
            ]
        );
    }
}
