//! A repository's stored objects checked whole, as `git fsck` checks a
//! repository: every object of every pack and every loose object read and
//! hashed against its id (and against its pack's commit-graph), and
//! everything the refs reach found.
//!
//! What is wrong is reported, not returned as the first error: an operator
//! wants the whole list. Errors of the checking itself (a file that cannot be
//! read at all) are still errors.

use gix_hash::ObjectId;

use crate::{
    commit_graph::CommitGraph,
    odb::{DecodeState, ObjectDb, PackHandle},
    walk::{enumerate, plan_shallow, DeepenRequest, Graph, WalkOptions},
    Result,
};

/// The most problems one check lists (it counts them all).
pub const MAX_PROBLEMS: usize = 100;

/// What a check found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Objects read and hashed.
    pub objects: u64,
    /// What is wrong, the first [`MAX_PROBLEMS`] of it.
    pub problems: Vec<String>,
    /// How many things are wrong.
    pub problem_count: u64,
}

impl Findings {
    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }

    fn add(&mut self, other: Findings) {
        self.objects += other.objects;
        self.problem_count += other.problem_count;
        let room = MAX_PROBLEMS.saturating_sub(self.problems.len());
        self.problems.extend(other.problems.into_iter().take(room));
    }

    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }
}

/// Every object of `pack` decoded (deltas resolved) and hashed against the id
/// its index gives it; with a commit-graph, each commit as the graph gives it
/// (tree, parents, committer time: what walks read from it instead of the
/// commit), and every commit of the pack in it.
pub fn verify_pack(pack: &PackHandle) -> Result<Findings> {
    let mut findings = Findings::default();
    let mut state = DecodeState::default();
    let mut buf = Vec::new();
    let graph = pack.commit_graph();
    let mut commits = 0u64;
    for index in pack.indices_in_pack_order() {
        let id = pack.oid_at(index)?;
        findings.objects += 1;
        match pack.decode(index, &mut buf, &mut state) {
            Ok(kind) => {
                let actual = gix_object::compute_hash(gix_hash::Kind::Sha1, kind, &buf)
                    .map_err(|err| crate::PackError::Corrupt(err.to_string()))?;
                if actual != id {
                    findings.problem(format!(
                        "pack-{}: object {id} holds content that hashes to {actual}",
                        pack.hash()
                    ));
                } else if let (Some(graph), gix_object::Kind::Commit) = (graph, kind) {
                    commits += 1;
                    if let Some(problem) = graph_disagrees(graph, &id, &buf) {
                        findings.problem(format!("pack-{}: commit-graph: {problem}", pack.hash()));
                    }
                }
            }
            // The error names the object and its pack.
            Err(err) => findings.problem(err.to_string()),
        }
    }
    if let Some(graph) = graph {
        if u64::from(graph.num_commits()) != commits {
            findings.problem(format!(
                "pack-{}: commit-graph: lists {} commits, the pack holds {commits}",
                pack.hash(),
                graph.num_commits()
            ));
        }
    }
    Ok(findings)
}

/// What the commit-graph says of commit `id` (content `data`) that the
/// commit does not, if anything.
fn graph_disagrees(graph: &CommitGraph, id: &ObjectId, data: &[u8]) -> Option<String> {
    let commit = match gix_object::CommitRef::from_bytes(data, gix_hash::Kind::Sha1) {
        Ok(commit) => commit,
        Err(err) => return Some(format!("commit {id} does not parse: {err}")),
    };
    let listed = match graph.commit(id) {
        Ok(Some(listed)) => listed,
        Ok(None) => return Some(format!("commit {id} is not in it")),
        Err(err) => return Some(err.to_string()),
    };
    let parents: Vec<ObjectId> = commit.parents().collect();
    let time = commit.time().map(|t| t.seconds).unwrap_or(0);
    if listed.tree != commit.tree() || *listed.parents != parents[..] || listed.time != time {
        return Some(format!(
            "commit {id}: tree {}, parents {:?}, time {} in the graph; tree {}, parents {parents:?}, time {time} in the commit",
            listed.tree, listed.parents, listed.time, commit.tree()
        ));
    }
    None
}

/// Every loose object read (the source verifies what it reads) and hashed
/// against its id.
pub fn verify_loose(db: &ObjectDb) -> Result<Findings> {
    let mut findings = Findings::default();
    for (id, _) in db.loose().list() {
        findings.objects += 1;
        match db.loose().read(&id) {
            Ok(Some((kind, data))) => {
                let actual = gix_object::compute_hash(gix_hash::Kind::Sha1, kind, &data)
                    .map_err(|err| crate::PackError::Corrupt(err.to_string()))?;
                if actual != id {
                    findings.problem(format!(
                        "loose object {id} holds content that hashes to {actual}"
                    ));
                }
            }
            Ok(None) => findings.problem(format!("loose object {id} is recorded but not stored")),
            Err(err) => findings.problem(format!("loose object {id}: {err}")),
        }
    }
    Ok(findings)
}

/// Everything `tips` reach is there: the walk a full clone makes, then every
/// object it lists looked up.
pub fn verify_reachable(db: &ObjectDb, tips: &[ObjectId]) -> Result<Findings> {
    let mut findings = Findings::default();
    if tips.is_empty() {
        return Ok(findings);
    }
    let mut graph = Graph::new(db);
    let walked = plan_shallow(&mut graph, tips, &DeepenRequest::default())
        .and_then(|plan| enumerate(&mut graph, tips, &[], &plan, &WalkOptions::default()));
    let outcome = match walked {
        Ok(outcome) => outcome,
        Err(err) => {
            findings.problem(format!("the history the refs reach is broken: {err}"));
            return Ok(findings);
        }
    };
    let ids: Vec<ObjectId> = outcome.objects.iter().map(|o| o.id).collect();
    for (id, found) in ids.iter().zip(db.locate_many(&ids)?) {
        if found.is_none() {
            findings.problem(format!("{id}, which the refs reach, is missing"));
        }
    }
    findings.objects = ids.len() as u64;
    Ok(findings)
}

/// The whole check: every pack, the loose objects, what `tips` reach.
pub fn verify_repository(db: &ObjectDb, tips: &[ObjectId]) -> Result<(Findings, u64)> {
    let mut findings = Findings::default();
    for pack in db.packs() {
        findings.add(verify_pack(pack)?);
    }
    findings.add(verify_loose(db)?);
    let reachable = verify_reachable(db, tips)?;
    let reached = reachable.objects;
    findings.problem_count += reachable.problem_count;
    let room = MAX_PROBLEMS.saturating_sub(findings.problems.len());
    findings
        .problems
        .extend(reachable.problems.into_iter().take(room));
    Ok((findings, reached))
}
