//! The commits `git log ^EXCLUDE INCLUDE` (`git log EXCLUDE..INCLUDE`) lists,
//! in its order: what a compare of two revisions shows and counts.
//!
//! This is git's own limited walk (`limit_list` in its `revision.c`), step
//! for step, so that the answer is git's even where commit dates lie: commits
//! come off a queue newest first (ties: first queued first); an excluded
//! ("uninteresting") commit marks its parents excluded, and through the
//! commits already met their ancestors; each included commit is taken as it
//! comes off; the walk ends once only excluded commits are queued and five
//! more of them have come off without a newer included one (git's slop). What
//! is listed is what was taken and is still not excluded at the end.

use std::{cmp::Reverse, collections::BinaryHeap};

use gix_hash::ObjectId;
use gix_hashtable::HashMap;

use super::graph::Graph;
use crate::Result;

/// Excluded commits taken off the queue, with nothing included queued, before
/// the walk ends (git's `SLOP`).
const SLOP: u32 = 5;

/// Queued at some time (git's `SEEN`); its parents are then known.
const SEEN: u8 = 1;
/// Excluded (git's `UNINTERESTING`).
const EXCLUDED: u8 = 2;
/// On the queue now.
const QUEUED: u8 = 4;

/// What `git log ^exclude include` lists, newest first in git's order, and
/// whether the walk stopped at `max_walked` commits before its end (the list
/// is then incomplete).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub commits: Vec<ObjectId>,
    pub cut_short: bool,
}

/// The commits reachable from `include` and not from `exclude`, as `git log
/// exclude..include` lists them (see the module doc), reading at most
/// `max_walked` commits.
pub fn range(
    graph: &mut Graph<'_>,
    include: ObjectId,
    exclude: ObjectId,
    max_walked: usize,
) -> Result<Range> {
    let mut walk = Walk {
        flags: HashMap::default(),
        queue: BinaryHeap::new(),
        queued: 0,
        included_queued: 0,
    };
    // The excluded revision's parents are excluded before the walk starts.
    walk.flags.insert(exclude, EXCLUDED);
    walk.exclude_ancestors(graph, exclude)?;
    for start in [exclude, include] {
        if walk.flag(&start) & SEEN == 0 {
            walk.push(graph, start)?;
        }
    }
    let (mut taken, mut walked, mut cut_short) = (Vec::new(), 0usize, false);
    let mut date = i64::MAX;
    let mut slop = SLOP;
    while let Some(commit) = walk.pop() {
        if walked == max_walked {
            cut_short = true;
            break;
        }
        walked += 1;
        let excluded = walk.flag(&commit) & EXCLUDED != 0;
        for parent in graph.parents(&commit)? {
            if excluded {
                walk.exclude(parent);
                walk.exclude_ancestors(graph, parent)?;
            }
            if walk.flag(&parent) & SEEN == 0 {
                walk.push(graph, parent)?;
            }
        }
        if excluded {
            walk.exclude_ancestors(graph, commit)?;
            slop = match walk.queue.peek() {
                None => 0,
                Some(&(newest, _, _)) if date <= newest => SLOP,
                Some(_) if walk.included_queued > 0 => SLOP,
                Some(_) => slop - 1,
            };
            if slop == 0 {
                break;
            }
            continue;
        }
        date = graph.commit_time(&commit)?;
        taken.push(commit);
    }
    taken.retain(|commit| walk.flag(commit) & EXCLUDED == 0);
    Ok(Range {
        commits: taken,
        cut_short,
    })
}

struct Walk {
    flags: HashMap<ObjectId, u8>,
    /// Newest first; among equal dates, first queued first.
    queue: BinaryHeap<(i64, Reverse<u64>, ObjectId)>,
    queued: u64,
    /// How many queued commits are not excluded.
    included_queued: usize,
}

impl Walk {
    fn flag(&self, id: &ObjectId) -> u8 {
        self.flags.get(id).copied().unwrap_or(0)
    }

    fn push(&mut self, graph: &mut Graph<'_>, id: ObjectId) -> Result<()> {
        let time = graph.commit_time(&id)?;
        let flags = self.flags.entry(id).or_default();
        *flags |= SEEN | QUEUED;
        if *flags & EXCLUDED == 0 {
            self.included_queued += 1;
        }
        self.queued += 1;
        self.queue.push((time, Reverse(self.queued), id));
        Ok(())
    }

    fn pop(&mut self) -> Option<ObjectId> {
        let (_, _, id) = self.queue.pop()?;
        let flags = self.flags.entry(id).or_default();
        *flags &= !QUEUED;
        if *flags & EXCLUDED == 0 {
            self.included_queued -= 1;
        }
        Some(id)
    }

    /// Mark `id` excluded; whether it was not before.
    fn exclude(&mut self, id: ObjectId) -> bool {
        let flags = self.flags.entry(id).or_default();
        if *flags & EXCLUDED != 0 {
            return false;
        }
        *flags |= EXCLUDED;
        if *flags & QUEUED != 0 {
            self.included_queued -= 1;
        }
        true
    }

    /// Git's `mark_parents_uninteresting`: exclude `commit`'s parents, and
    /// on through every ancestor whose parents are known (one met before),
    /// down each line until a commit already excluded.
    fn exclude_ancestors(&mut self, graph: &mut Graph<'_>, commit: ObjectId) -> Result<()> {
        // A stack, as git's: the last parent first.
        let mut lines: Vec<ObjectId> = graph.parents(&commit)?.iter().copied().collect();
        while let Some(mut current) = lines.pop() {
            loop {
                if !self.exclude(current) {
                    break;
                }
                // Parents known only for a commit git has parsed: one queued
                // at some time (a start, or a parent of a commit walked).
                if self.flag(&current) & SEEN == 0 {
                    break;
                }
                let parents = graph.parents(&current)?;
                let Some((first, rest)) = parents.split_first() else {
                    break;
                };
                lines.extend(rest.iter());
                current = *first;
            }
        }
        Ok(())
    }
}
