//! The commits `git log REV [-- PATH]` lists, in its order, a page at a time.
//!
//! Git's default walk: the newest commit by committer date first (among equal
//! dates, the one queued first), each commit's parents queued once, in order.
//! With a path, git's default history simplification: a commit whose entry at
//! the path is the same as one of its parents' (TREESAME) is not listed, and
//! the walk follows only the first such parent; a commit that differs from
//! every parent is listed and all its parents followed; a root commit is
//! listed when it has the path.

use std::{cmp::Reverse, collections::BinaryHeap};

use gix_hash::ObjectId;
use gix_hashtable::{HashMap, HashSet};
use gix_object::tree::EntryKind;

use super::graph::Graph;
use crate::{files::find_path, Result};

/// What to list.
#[derive(Debug, Clone)]
pub struct LogRequest<'a> {
    /// Only commits that change this path (`/`-separated, no empty part).
    pub path: Option<&'a [u8]>,
    /// Listed commits passed over first.
    pub skip: usize,
    /// The most commits listed.
    pub limit: usize,
    /// The most commits the walk reads: it stops there, listed or not.
    pub max_walked: usize,
}

/// A page of the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogPage {
    /// The listed commits, newest first as git lists them.
    pub commits: Vec<ObjectId>,
    /// Whether the log goes on past this page.
    pub more: bool,
    /// Whether the walk stopped at [`LogRequest::max_walked`] before the
    /// page was full or the history ended.
    pub cut_short: bool,
}

/// The commits `git log start [-- path]` lists, from the `skip`th, at most
/// `limit` (see the module doc).
pub fn log(graph: &mut Graph<'_>, start: ObjectId, request: &LogRequest<'_>) -> Result<LogPage> {
    let mut queue = DateQueue::default();
    let mut seen = HashSet::default();
    let mut entries = PathEntries::default();
    seen.insert(start);
    queue.push(start, graph.commit_time(&start)?);
    let (mut page, mut listed, mut walked) = (LogPage::default(), 0usize, 0usize);
    while let Some(commit) = queue.pop() {
        if walked == request.max_walked {
            page.cut_short = true;
            break;
        }
        walked += 1;
        let info = graph.commit_info(&commit)?;
        let (shown, follow) = match request.path {
            None => (true, info.parents.to_vec()),
            Some(path) => {
                let mine = entries.at(graph, &commit, info.tree, path)?;
                let mut same = None;
                for parent in info.parents.iter() {
                    let tree = graph.commit_info(parent)?.tree;
                    if entries.at(graph, parent, tree, path)? == mine {
                        same = Some(*parent);
                        break;
                    }
                }
                match same {
                    Some(parent) => (false, vec![parent]),
                    None if info.parents.is_empty() => (mine.is_some(), Vec::new()),
                    None => (true, info.parents.to_vec()),
                }
            }
        };
        if shown {
            if listed == request.skip + request.limit {
                page.more = true;
                break;
            }
            if listed >= request.skip {
                page.commits.push(commit);
            }
            listed += 1;
        }
        for parent in follow {
            if seen.insert(parent) {
                queue.push(parent, graph.commit_time(&parent)?);
            }
        }
    }
    Ok(page)
}

/// Commits by committer date, newest first; among equal dates, first queued
/// first: the order of git's `commit_list_insert_by_date`, which puts a commit
/// after every one as new or newer.
#[derive(Default)]
struct DateQueue {
    heap: BinaryHeap<(i64, Reverse<u64>, ObjectId)>,
    queued: u64,
}

impl DateQueue {
    fn push(&mut self, id: ObjectId, time: i64) {
        self.queued += 1;
        self.heap.push((time, Reverse(self.queued), id));
    }

    fn pop(&mut self) -> Option<ObjectId> {
        self.heap.pop().map(|(_, _, id)| id)
    }
}

/// The entry each commit has at the path, each looked up once.
#[derive(Default)]
struct PathEntries(HashMap<ObjectId, Option<(ObjectId, EntryKind)>>);

impl PathEntries {
    fn at(
        &mut self,
        graph: &mut Graph<'_>,
        commit: &ObjectId,
        tree: ObjectId,
        path: &[u8],
    ) -> Result<Option<(ObjectId, EntryKind)>> {
        if let Some(entry) = self.0.get(commit) {
            return Ok(*entry);
        }
        let entry = find_path(&mut graph.reader, tree, path)?;
        self.0.insert(*commit, entry);
        Ok(entry)
    }
}
