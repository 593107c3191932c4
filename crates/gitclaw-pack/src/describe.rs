//! `git describe`: a commit named by the nearest tag it descends from, as
//! `TAG-DEPTH-gABBREV` (or `TAG` when the tag names the commit itself), step
//! for step as git 2.47's `describe_commit` finds it: the commits walked
//! newest first by committer date, at most ten candidate tags, each one's
//! depth the number of commits walked that it does not reach, ties to the tag
//! found first, and the depth of the best one finished by walking on until
//! every commit left is one it reaches.
//!
//! Tags are the repository's `refs/tags/*` filtered by `--match` and
//! `--exclude` globs (git's `wildmatch` without path rules); annotated ones
//! only unless `tags` (git's `--tags`). Several tags of one commit: an
//! annotated one over a lightweight one, then the newer tagger date, then the
//! first by name. An annotated tag is named by the name inside it.

use std::collections::{BinaryHeap, HashMap};

use gix_hash::ObjectId;

use crate::{odb::ObjectDb, walk::Graph, Kind, Result};

/// git's `--candidates` default.
const MAX_CANDIDATES: usize = 10;

/// The most commits one description walks; past it there is none (git has no
/// bound: describing a commit no tag reaches walks the whole history).
pub const MAX_DESCRIBE_COMMITS: usize = 1_000_000;

/// `git describe`'s options that a `%(describe)` placeholder can give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeOptions {
    /// `--tags`: lightweight tags count too.
    pub tags: bool,
    /// `--abbrev=N`; `Some(0)` leaves the `-DEPTH-gABBREV` suffix out; none:
    /// git's automatic length.
    pub abbrev: Option<usize>,
    /// `--match`: tag names (after `refs/tags/`) one of these globs matches.
    pub matches: Vec<Vec<u8>>,
    /// `--exclude`: tag names none of these globs matches.
    pub excludes: Vec<Vec<u8>>,
}

/// A tag that can name commits.
struct Name {
    /// 2 annotated, 1 lightweight.
    prio: u8,
    /// The object the ref names (the tag object when annotated).
    oid: ObjectId,
    /// The ref's name after `refs/tags/`.
    path: String,
}

/// A commit waiting in the walk: newest first, then first queued.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    time: i64,
    order: std::cmp::Reverse<u64>,
    id: ObjectId,
}

struct Candidate {
    name: usize,
    depth: u64,
    found_order: usize,
    flag: u32,
}

const SEEN: u32 = 1;

/// The commits walked: each one's flags (seen, and which candidates reach
/// it) and those waiting.
struct Walk<'a> {
    graph: Graph<'a>,
    flags: HashMap<ObjectId, u32>,
    queue: BinaryHeap<Queued>,
    /// How many were queued.
    order: u64,
}

impl Walk<'_> {
    fn push(&mut self, id: ObjectId) -> Result<()> {
        self.order += 1;
        self.queue.push(Queued {
            time: self.graph.commit_time(&id)?,
            order: std::cmp::Reverse(self.order),
            id,
        });
        Ok(())
    }

    fn flags_of(&self, id: &ObjectId) -> u32 {
        self.flags.get(id).copied().unwrap_or(0)
    }

    /// How many commits were taken off the queue, roughly (git's
    /// `seen_commits`): queued less waiting.
    fn walked(&self) -> usize {
        self.order as usize - self.queue.len()
    }

    /// The parents of `id` get its flags, and are queued when first seen.
    fn pass_to_parents(&mut self, id: &ObjectId, own: u32) -> Result<()> {
        let info = self.graph.commit_info(id)?;
        for parent in info.parents.iter() {
            let flag = self.flags.entry(*parent).or_insert(0);
            let seen = *flag & SEEN != 0;
            *flag |= own;
            if !seen {
                self.push(*parent)?;
            }
        }
        Ok(())
    }
}

/// `git describe COMMIT` with `options` over `refs` (every ref of the
/// repository, sorted by name): `None` where git finds no tag (and fails).
pub fn describe(
    db: &ObjectDb,
    refs: &[(String, ObjectId)],
    commit: ObjectId,
    options: &DescribeOptions,
) -> Result<Option<String>> {
    let mut reader = db.reader();
    let mut buf = Vec::new();
    // Peeled object → its name (git's `names`), in ref order.
    let mut names: Vec<Name> = Vec::new();
    let mut by_peeled: HashMap<ObjectId, usize> = HashMap::new();
    let mut peeled_commits: Vec<(ObjectId, usize)> = Vec::new();
    for (name, oid) in refs {
        let Some(path) = name.strip_prefix("refs/tags/") else {
            continue;
        };
        let glob = |pattern: &Vec<u8>| {
            gix_glob::wildmatch(
                pattern.as_slice().into(),
                path.as_bytes().into(),
                gix_glob::wildmatch::Mode::empty(),
            )
        };
        if options.excludes.iter().any(glob) {
            continue;
        }
        if !options.matches.is_empty() && !options.matches.iter().any(glob) {
            continue;
        }
        let (peeled, kind) = reader.peel(oid).unwrap_or((*oid, Kind::Blob));
        let prio = if peeled != *oid { 2 } else { 1 };
        let replace = match by_peeled.get(&peeled) {
            None => true,
            Some(&at) if names[at].prio < prio => true,
            Some(&at) if names[at].prio == 2 && prio == 2 => {
                // The newer tagger date wins; an unreadable tag loses.
                match tag_of(&mut reader, &names[at].oid, &mut buf) {
                    None => true,
                    Some((_, kept)) => match tag_of(&mut reader, oid, &mut buf) {
                        None => false,
                        Some((_, date)) => kept < date,
                    },
                }
            }
            Some(_) => false,
        };
        if !replace {
            continue;
        }
        let entry = Name {
            prio,
            oid: *oid,
            path: path.to_string(),
        };
        match by_peeled.get(&peeled) {
            Some(&at) => names[at] = entry,
            None => {
                by_peeled.insert(peeled, names.len());
                if kind == Kind::Commit {
                    peeled_commits.push((peeled, names.len()));
                }
                names.push(entry);
            }
        }
    }
    // `--abbrev=0` with a misnamed tag: git's whole id.
    let abbrev = |id: &ObjectId| match options.abbrev {
        Some(0) => Ok(id.to_hex().to_string()),
        len => db.abbreviate(id, len),
    };
    // The name to print: an annotated tag's own name.
    let mut append_name = |at: usize, reader: &mut crate::odb::ObjectReader<'_>| {
        let name = &names[at];
        if name.prio < 2 {
            return Ok::<_, crate::PackError>((name.path.clone(), false, None));
        }
        let (tag_name, target) = tag_name_and_target(reader, &name.oid, &mut buf)?;
        let misnamed = tag_name != name.path;
        Ok((tag_name, misnamed, Some(target)))
    };

    if let Some(&at) = by_peeled.get(&commit) {
        if options.tags || names[at].prio == 2 {
            let (mut out, misnamed, target) = append_name(at, &mut reader)?;
            if misnamed {
                out.push_str(&format!("-0-g{}", abbrev(&target.unwrap_or(commit))?));
            }
            return Ok(Some(out));
        }
    }

    let commit_names: HashMap<ObjectId, usize> = peeled_commits.into_iter().collect();
    let mut walk = Walk {
        graph: Graph::new(db),
        flags: HashMap::new(),
        queue: BinaryHeap::new(),
        order: 0,
    };
    walk.flags.insert(commit, SEEN);
    walk.push(commit)?;
    let mut matches: Vec<Candidate> = Vec::new();
    let mut annotated = 0usize;
    let mut gave_up_on = None;
    while let Some(Queued { id, .. }) = walk.queue.pop() {
        if walk.walked() > MAX_DESCRIBE_COMMITS {
            return Ok(None);
        }
        let mut own = walk.flags_of(&id);
        if let Some(&at) = commit_names.get(&id) {
            if !options.tags && names[at].prio < 2 {
                // git counts these only for its error message.
            } else if matches.len() < MAX_CANDIDATES {
                let flag = 1u32 << (matches.len() + 1);
                matches.push(Candidate {
                    name: at,
                    depth: walk.walked() as u64 - 1,
                    found_order: matches.len() + 1,
                    flag,
                });
                own |= flag;
                walk.flags.insert(id, own);
                if names[at].prio == 2 {
                    annotated += 1;
                }
            } else {
                gave_up_on = Some(id);
                break;
            }
        }
        for candidate in &mut matches {
            if own & candidate.flag == 0 {
                candidate.depth += 1;
            }
        }
        // Stop once the last path left is covered by the best candidates.
        if annotated > 0 && walk.queue.is_empty() {
            let best = matches.iter().map(|c| c.depth).min().unwrap_or(0);
            let within = matches
                .iter()
                .filter(|c| c.depth == best)
                .fold(0, |all, c| all | c.flag);
            if own & within == within {
                break;
            }
        }
        walk.pass_to_parents(&id, own)?;
    }
    if matches.is_empty() {
        return Ok(None);
    }
    matches.sort_by_key(|c| (c.depth, c.found_order));
    if let Some(id) = gave_up_on {
        walk.push(id)?;
    }
    // git's finish_depth_computation for the best candidate: on until every
    // commit left is one it reaches.
    let best_flag = matches[0].flag;
    let mut extra = 0;
    while let Some(Queued { id, .. }) = walk.queue.pop() {
        if walk.walked() > MAX_DESCRIBE_COMMITS {
            return Ok(None);
        }
        let own = walk.flags_of(&id);
        if own & best_flag != 0 {
            if walk
                .queue
                .iter()
                .all(|q| walk.flags_of(&q.id) & best_flag != 0)
            {
                break;
            }
        } else {
            extra += 1;
        }
        walk.pass_to_parents(&id, own)?;
    }
    let best = &matches[0];
    let (mut out, misnamed, _) = append_name(best.name, &mut reader)?;
    if misnamed || options.abbrev != Some(0) {
        out.push_str(&format!("-{}-g{}", best.depth + extra, abbrev(&commit)?));
    }
    Ok(Some(out))
}

/// An annotated tag's name and tagger date, if `id` is a readable tag.
fn tag_of(
    reader: &mut crate::odb::ObjectReader<'_>,
    id: &ObjectId,
    buf: &mut Vec<u8>,
) -> Option<(String, i64)> {
    if reader.read(id, buf).ok()?? != Kind::Tag {
        return None;
    }
    let tag = gix_object::TagRef::from_bytes(buf, gix_hash::Kind::Sha1).ok()?;
    let date = tag
        .tagger()
        .ok()
        .flatten()
        .and_then(|t| t.time().ok())
        .map_or(0, |t| t.seconds);
    Some((tag.name.to_string(), date))
}

/// An annotated tag's own name and the object it names directly.
fn tag_name_and_target(
    reader: &mut crate::odb::ObjectReader<'_>,
    id: &ObjectId,
    buf: &mut Vec<u8>,
) -> Result<(String, ObjectId)> {
    reader.read_existing(id, buf)?;
    let tag = gix_object::TagRef::from_bytes(buf, gix_hash::Kind::Sha1).map_err(|err| {
        crate::PackError::MalformedObject {
            oid: *id,
            detail: err.to_string(),
        }
    })?;
    Ok((tag.name.to_string(), tag.target()))
}
