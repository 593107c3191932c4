//! The object-graph walk of upload-pack.
//!
//! [`plan_shallow`] decides the shallow boundary of a fetch (`deepen`,
//! `deepen-relative`, `deepen-since`, `deepen-not`, unshallow) the way git's
//! upload-pack does; [`enumerate`] then lists the objects reachable from the wants
//! and not from the haves, honouring that boundary and the client's own shallow
//! commits. Like git, it excludes the trees of the commits at the edge of what the
//! client has rather than of its whole history, so its cost follows the fetch, not
//! the repository (an object found only deeper in the client's history may go out
//! again). [`ok_to_give_up`] is the negotiation's "ready" test.
//!
//! Not here: parsing requests or writing packs.

use std::collections::VecDeque;

use gix_hash::ObjectId;
use gix_hashtable::{HashMap, HashSet};
use gix_object::{CommitRef, Kind};

use crate::{
    odb::{ObjectDb, ObjectReader},
    PackError, Result,
};

/// `deepen` with this value means "all of history" (what `git fetch --unshallow` sends).
pub const INFINITE_DEPTH: u32 = 0x7fff_ffff;

#[derive(Debug, Clone)]
struct CommitInfo {
    tree: ObjectId,
    parents: Vec<ObjectId>,
    time: i64,
}

/// Reads and memoizes commits during one request.
pub struct Graph<'a> {
    reader: ObjectReader<'a>,
    db: &'a ObjectDb,
    commits: HashMap<ObjectId, CommitInfo>,
    buf: Vec<u8>,
    /// Commits and trees parsed so far, and who wants to hear about it.
    parsed: u64,
    on_progress: Option<Box<dyn FnMut(u64) + 'a>>,
}

impl<'a> Graph<'a> {
    pub fn new(db: &'a ObjectDb) -> Self {
        Graph {
            reader: db.reader(),
            db,
            commits: HashMap::default(),
            buf: Vec::new(),
            parsed: 0,
            on_progress: None,
        }
    }

    /// Call `f` with the number of commits and trees parsed so far, after each
    /// one (for progress lines and keepalives; `f` decides by the clock when to speak).
    pub fn on_progress(&mut self, f: impl FnMut(u64) + 'a) {
        self.on_progress = Some(Box::new(f));
    }

    /// Offer the progress callback every parsed object: a single object can take
    /// seconds (a slow store), so the callback decides by the clock, not by count.
    fn count_parsed(&mut self) {
        self.parsed += 1;
        if let Some(f) = self.on_progress.as_mut() {
            f(self.parsed);
        }
    }

    pub fn db(&self) -> &'a ObjectDb {
        self.db
    }

    fn commit(&mut self, id: &ObjectId) -> Result<&CommitInfo> {
        if !self.commits.contains_key(id) {
            self.count_parsed();
            let kind = self.reader.read_existing(id, &mut self.buf)?;
            if kind != Kind::Commit {
                return Err(PackError::MalformedObject {
                    oid: *id,
                    detail: format!("expected a commit, found a {kind}"),
                });
            }
            let commit = CommitRef::from_bytes(&self.buf, gix_hash::Kind::Sha1).map_err(|err| {
                PackError::MalformedObject {
                    oid: *id,
                    detail: err.to_string(),
                }
            })?;
            let info = CommitInfo {
                tree: commit.tree(),
                parents: commit.parents().collect(),
                time: commit.time().map(|t| t.seconds).unwrap_or(0),
            };
            self.commits.insert(*id, info);
        }
        self.commits.get(id).ok_or(PackError::MissingObject(*id))
    }

    /// Peel tags; returns the final object and its kind, plus the tags passed on the way.
    fn peel(&mut self, id: &ObjectId) -> Result<(ObjectId, Kind, Vec<ObjectId>)> {
        let mut tags = Vec::new();
        let mut current = *id;
        for _ in 0..64 {
            // The header first: a want may be a big blob, which is never read whole.
            let (kind, _) = self
                .reader
                .header(&current)?
                .ok_or(PackError::MissingObject(current))?;
            if kind != Kind::Tag {
                return Ok((current, kind, tags));
            }
            self.reader.read_existing(&current, &mut self.buf)?;
            tags.push(current);
            let tag =
                gix_object::TagRef::from_bytes(&self.buf, gix_hash::Kind::Sha1).map_err(|err| {
                    PackError::MalformedObject {
                        oid: current,
                        detail: err.to_string(),
                    }
                })?;
            current = tag.target();
        }
        Err(PackError::Corrupt(format!(
            "tag chain from {id} is too long"
        )))
    }

    /// The commit a want or have names, if it peels to one.
    pub fn peel_to_commit(&mut self, id: &ObjectId) -> Result<Option<ObjectId>> {
        let (target, kind, _) = self.peel(id)?;
        Ok((kind == Kind::Commit).then_some(target))
    }

    pub fn commit_time(&mut self, id: &ObjectId) -> Result<i64> {
        Ok(self.commit(id)?.time)
    }

    fn parents(&mut self, id: &ObjectId) -> Result<Vec<ObjectId>> {
        Ok(self.commit(id)?.parents.clone())
    }
}

/// What the client asked for about history depth.
#[derive(Debug, Clone, Default)]
pub struct DeepenRequest {
    /// The client's current shallow commits (`shallow` lines).
    pub client_shallow: Vec<ObjectId>,
    pub depth: Option<u32>,
    pub relative: bool,
    pub since: Option<i64>,
    /// Tips (already resolved from ref names) whose history is excluded.
    pub not: Vec<ObjectId>,
}

impl DeepenRequest {
    pub fn is_deepen(&self) -> bool {
        self.depth.is_some() || self.since.is_some() || !self.not.is_empty()
    }
}

/// The shallow boundary of a fetch and what to tell the client about it.
#[derive(Debug, Clone, Default)]
pub struct ShallowPlan {
    /// Commits to announce as `shallow`.
    pub shallow: Vec<ObjectId>,
    /// Commits to announce as `unshallow`.
    pub unshallow: Vec<ObjectId>,
    /// Commits whose parents the walk must not follow.
    grafts: HashSet<ObjectId>,
    /// Parents of unshallowed commits: sent as if wanted.
    extra_wants: Vec<ObjectId>,
    /// Unshallowed commits: the client has them and their trees.
    extra_edges: Vec<ObjectId>,
}

impl ShallowPlan {
    /// Nothing shallow about this fetch: the walk follows every parent.
    pub fn is_full(&self) -> bool {
        self.shallow.is_empty()
            && self.unshallow.is_empty()
            && self.grafts.is_empty()
            && self.extra_wants.is_empty()
            && self.extra_edges.is_empty()
    }
}

/// Decide the shallow boundary as git's upload-pack does.
pub fn plan_shallow(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    request: &DeepenRequest,
) -> Result<ShallowPlan> {
    let mut client_shallow = Vec::new();
    for id in &request.client_shallow {
        // Unknown shallow commits are ignored, as git does.
        if graph.db.contains(id) && graph.peel_to_commit(id)? == Some(*id) {
            client_shallow.push(*id);
        }
    }
    let mut plan = ShallowPlan::default();
    if !request.is_deepen() {
        plan.grafts = client_shallow.iter().copied().collect();
        return Ok(plan);
    }

    let mut not_shallow: HashSet<ObjectId> = HashSet::default();
    let mut boundary: Vec<ObjectId> = Vec::new();
    let mut want_commits = Vec::new();
    for want in wants {
        if let Some(commit) = graph.peel_to_commit(want)? {
            want_commits.push(commit);
        }
    }

    if request.since.is_some() || !request.not.is_empty() {
        boundary = shallow_by_rev_list(graph, &want_commits, request, &mut not_shallow)?;
        if boundary.is_empty() && not_shallow.is_empty() {
            return Err(PackError::InvalidPack(
                "no commits selected for shallow requests".into(),
            ));
        }
    } else if let Some(depth) = request.depth {
        if depth == INFINITE_DEPTH && !request.relative {
            not_shallow.extend(client_shallow.iter().copied());
        } else {
            let (heads, depth) = if request.relative {
                (client_shallow.clone(), depth.saturating_add(1))
            } else {
                (want_commits.clone(), depth)
            };
            boundary = shallow_by_depth(graph, &heads, depth, &mut not_shallow)?;
        }
    }

    let client_set: HashSet<ObjectId> = client_shallow.iter().copied().collect();
    for id in &boundary {
        if !client_set.contains(id) && !not_shallow.contains(id) {
            plan.shallow.push(*id);
        }
        plan.grafts.insert(*id);
    }
    for id in &client_shallow {
        if not_shallow.contains(id) {
            plan.unshallow.push(*id);
            plan.extra_wants.extend(graph.parents(id)?);
            plan.extra_edges.push(*id);
        }
        plan.grafts.insert(*id);
    }
    Ok(plan)
}

/// Commits at exactly `depth` from `heads` (by their shortest path) form the boundary.
fn shallow_by_depth(
    graph: &mut Graph<'_>,
    heads: &[ObjectId],
    depth: u32,
    not_shallow: &mut HashSet<ObjectId>,
) -> Result<Vec<ObjectId>> {
    let mut seen: HashSet<ObjectId> = HashSet::default();
    let mut queue: VecDeque<(ObjectId, u32)> = VecDeque::new();
    for head in heads {
        if seen.insert(*head) {
            queue.push_back((*head, 1));
        }
    }
    let mut boundary = Vec::new();
    while let Some((id, d)) = queue.pop_front() {
        if d >= depth {
            boundary.push(id);
            continue;
        }
        not_shallow.insert(id);
        for parent in graph.parents(&id)? {
            if seen.insert(parent) {
                queue.push_back((parent, d + 1));
            }
        }
    }
    Ok(boundary)
}

/// `deepen-since` / `deepen-not`: the selected commits are those reachable from the
/// wants, not from the excluded tips, and not older than the cut-off; a selected
/// commit with an unselected parent is a boundary commit.
fn shallow_by_rev_list(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    request: &DeepenRequest,
    not_shallow: &mut HashSet<ObjectId>,
) -> Result<Vec<ObjectId>> {
    let mut excluded: HashSet<ObjectId> = HashSet::default();
    let mut stack: Vec<ObjectId> = Vec::new();
    for tip in &request.not {
        if let Some(commit) = graph.peel_to_commit(tip)? {
            stack.push(commit);
        }
    }
    while let Some(id) = stack.pop() {
        if excluded.insert(id) {
            stack.extend(graph.parents(&id)?);
        }
    }
    let mut selected: Vec<ObjectId> = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::default();
    stack.extend(wants.iter().copied());
    while let Some(id) = stack.pop() {
        if excluded.contains(&id) || !seen.insert(id) {
            continue;
        }
        if let Some(since) = request.since {
            if graph.commit_time(&id)? < since {
                continue;
            }
        }
        selected.push(id);
        not_shallow.insert(id);
        stack.extend(graph.parents(&id)?);
    }
    let mut boundary = Vec::new();
    for id in selected {
        let parents = graph.parents(&id)?;
        if parents.iter().any(|p| !not_shallow.contains(p)) {
            boundary.push(id);
        }
    }
    // Boundary commits are shallow, not "not shallow".
    for id in &boundary {
        not_shallow.remove(id);
    }
    Ok(boundary)
}

/// An object to send, with its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkObject {
    pub id: ObjectId,
    pub kind: Kind,
    /// Git's path-name hash of where the walk met the object (0 for commits and
    /// tags); objects at similar paths sort together for delta search.
    pub name_hash: u32,
}

impl WalkObject {
    pub fn new(id: ObjectId, kind: Kind) -> Self {
        WalkObject {
            id,
            kind,
            name_hash: 0,
        }
    }
}

/// Git's `pack_name_hash`: a sortable number from the last non-whitespace
/// characters of a path, the final ones counting most (so `*.c` sort together).
pub fn name_hash(path: &[u8]) -> u32 {
    path.iter()
        .filter(|c| !c.is_ascii_whitespace())
        .fold(0u32, |hash, &c| {
            (hash >> 2).wrapping_add(u32::from(c) << 24)
        })
}

/// The outcome of [`enumerate`].
#[derive(Debug, Default)]
pub struct WalkOutcome {
    /// Every object to send, commits first (newest first), then tags, trees and blobs.
    pub objects: Vec<WalkObject>,
    pub commits: usize,
    /// Objects the client is known to have: delta bases for a thin pack.
    pub client_has: HashSet<ObjectId>,
}

/// A partial-clone object filter (`--filter=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `blob:none`: no blobs.
    BlobNone,
    /// `blob:limit=<n>`: no blobs of `n` bytes or more.
    BlobLimit(u64),
    /// `tree:<depth>`: no trees or blobs at `depth` or deeper below a root tree.
    TreeDepth(u64),
    /// `combine:<a>+<b>…`: an object goes out only if every filter lets it.
    Combine(Vec<Filter>),
}

impl Filter {
    /// Parse a filter spec as git sends it.
    pub fn parse(spec: &str) -> std::result::Result<Filter, String> {
        if spec == "blob:none" {
            return Ok(Filter::BlobNone);
        }
        if let Some(limit) = spec.strip_prefix("blob:limit=") {
            return parse_size(limit)
                .map(Filter::BlobLimit)
                .ok_or_else(|| format!("invalid filter-spec '{spec}'"));
        }
        if let Some(depth) = spec.strip_prefix("tree:") {
            return depth
                .parse::<u64>()
                .map(Filter::TreeDepth)
                .map_err(|_| format!("invalid filter-spec '{spec}'"));
        }
        if let Some(list) = spec.strip_prefix("combine:") {
            let parts: std::result::Result<Vec<Filter>, String> = list
                .split('+')
                .map(|part| {
                    let decoded = percent_decode(part)
                        .ok_or_else(|| format!("invalid filter-spec '{spec}'"))?;
                    if decoded.starts_with("combine:") {
                        return Err(format!(
                            "nested combine filters are not supported: '{spec}'"
                        ));
                    }
                    Filter::parse(&decoded)
                })
                .collect();
            let parts = parts?;
            if parts.is_empty() {
                return Err(format!("invalid filter-spec '{spec}'"));
            }
            return Ok(Filter::Combine(parts));
        }
        Err(format!("unsupported filter-spec '{spec}'"))
    }

    /// Whether an object of `kind` at `depth` below its root tree goes out;
    /// `size` is asked for only by size filters.
    fn admits(
        &self,
        kind: Kind,
        depth: u64,
        size: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<bool> {
        Ok(match self {
            Filter::BlobNone => kind != Kind::Blob,
            Filter::BlobLimit(limit) => kind != Kind::Blob || size()? < *limit,
            Filter::TreeDepth(max) => !matches!(kind, Kind::Tree | Kind::Blob) || depth < *max,
            Filter::Combine(all) => {
                for filter in all {
                    if !filter.admits(kind, depth, size)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' | b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What to send besides the plain wants.
#[derive(Clone, Default)]
pub struct WalkOptions {
    /// Partial clone: objects the filter refuses stay out (wanted objects never do).
    pub filter: Option<Filter>,
    /// Annotated tags (their object ids) to add when the object they point at is sent (`include-tag`).
    pub include_tags: Vec<ObjectId>,
    /// A pack closed under reachability (every object it holds has everything it
    /// reaches in it too) that goes out whole ahead of the listed objects: the walk
    /// neither lists nor enters anything it holds.
    pub closed: Option<std::sync::Arc<crate::odb::PackHandle>>,
}

impl std::fmt::Debug for WalkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkOptions")
            .field("filter", &self.filter)
            .field("include_tags", &self.include_tags.len())
            .field("closed", &self.closed.as_ref().map(|p| *p.hash()))
            .finish()
    }
}

/// Objects a walk does not enter: a set, and optionally a closed pack.
struct Skip<'a> {
    set: &'a HashSet<ObjectId>,
    closed: Option<&'a crate::odb::PackHandle>,
}

impl Skip<'_> {
    fn has(&self, id: &ObjectId) -> bool {
        self.set.contains(id) || self.closed.is_some_and(|p| p.lookup(id).is_some())
    }
}

/// List the objects reachable from `wants` and not reachable from `haves` (with
/// edge semantics: see the module documentation).
pub fn enumerate(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    haves: &[ObjectId],
    plan: &ShallowPlan,
    options: &WalkOptions,
) -> Result<WalkOutcome> {
    // 1. The client's non-commit haves, and the commits its haves name.
    let mut have_roots: Vec<ObjectId> = Vec::new();
    let mut have_tips: Vec<ObjectId> = Vec::new();
    for have in haves.iter().chain(&plan.extra_edges) {
        if !graph.db.contains(have) {
            continue;
        }
        let (target, kind, tags) = graph.peel(have)?;
        have_roots.extend(tags);
        match kind {
            Kind::Commit => have_tips.push(target),
            _ => have_roots.push(target),
        }
    }
    let have_root_set: HashSet<ObjectId> = have_roots.iter().copied().collect();

    // 2. Commits to send.
    let mut out = WalkOutcome::default();
    let mut sent: HashSet<ObjectId> = HashSet::default();
    let mut tags_out: Vec<WalkObject> = Vec::new();
    let mut roots: Vec<(ObjectId, Kind)> = Vec::new();
    let mut want_commits: Vec<ObjectId> = Vec::new();
    let closed = options.closed.as_deref();
    let in_closed = |id: &ObjectId| closed.is_some_and(|p| p.lookup(id).is_some());
    for want in wants.iter().chain(&plan.extra_wants) {
        if in_closed(want) {
            continue;
        }
        let (target, kind, tags) = graph.peel(want)?;
        for tag in tags {
            if !have_root_set.contains(&tag) && !in_closed(&tag) && sent.insert(tag) {
                tags_out.push(WalkObject::new(tag, Kind::Tag));
            }
        }
        match kind {
            Kind::Commit if in_closed(&target) => {}
            Kind::Commit => want_commits.push(target),
            other => roots.push((target, other)),
        }
    }
    let walk = limit_commits(graph, &want_commits, &have_tips, plan, closed)?;
    let commits = walk.commits;
    sent.extend(commits.iter().copied());
    out.commits = commits.len();

    // 3. Trees and blobs the client has, as far as they matter: those of the commits
    // at the edge between what it has and what it gets (git's edge semantics — an
    // object only deeper in its history may be sent again, which costs bytes, not
    // correctness, and spares walking every tree the client ever had).
    let mut have_objects: HashSet<ObjectId> = HashSet::default();
    if !commits.is_empty() || !roots.is_empty() {
        let mut tree_roots: Vec<(ObjectId, Kind, bool)> = Vec::new();
        for id in &walk.edges {
            tree_roots.push((graph.commit(id)?.tree, Kind::Tree, true));
        }
        for id in &have_roots {
            let (kind, _) = graph
                .reader
                .header(id)?
                .ok_or(PackError::MissingObject(*id))?;
            tree_roots.push((*id, kind, true));
        }
        let none = HashSet::default();
        let skip = Skip { set: &none, closed };
        walk_trees(graph, tree_roots, &mut have_objects, &skip, None, |_| {})?;
    }
    let have_commits = walk.uninteresting;

    // 4. Trees and blobs to send.
    out.objects
        .extend(commits.iter().map(|id| WalkObject::new(*id, Kind::Commit)));
    let mut tree_roots: Vec<(ObjectId, Kind, bool)> = Vec::new();
    for id in &commits {
        tree_roots.push((graph.commit(id)?.tree, Kind::Tree, false));
    }
    tree_roots.extend(roots.into_iter().map(|(id, kind)| (id, kind, true)));
    let mut objects = Vec::new();
    let skip = Skip {
        set: &have_objects,
        closed,
    };
    walk_trees(
        graph,
        tree_roots,
        &mut sent,
        &skip,
        options.filter.as_ref(),
        |obj| objects.push(obj),
    )?;

    // 5. include-tag: tags whose target goes out (or that peel to something that does).
    for tag in &options.include_tags {
        if sent.contains(tag) || have_root_set.contains(tag) || in_closed(tag) {
            continue;
        }
        let (target, _, chain) = graph.peel(tag)?;
        if sent.contains(&target) || in_closed(&target) {
            for id in chain {
                if !in_closed(&id) && sent.insert(id) {
                    tags_out.push(WalkObject::new(id, Kind::Tag));
                }
            }
        }
    }
    out.objects.extend(tags_out);
    out.objects.extend(objects);
    have_objects.extend(have_commits);
    have_objects.extend(have_root_set);
    out.client_has = have_objects;
    Ok(out)
}

// Flags of the commit walk.
const SEEN: u8 = 1;
const UNINTERESTING: u8 = 2;
const QUEUED: u8 = 4;
const DONE: u8 = 8;

/// The commit part of [`enumerate`].
struct CommitWalk {
    /// Commits to send, newest first.
    commits: Vec<ObjectId>,
    /// Commits the client has that border on what it gets: its named haves and the
    /// parents of sent commits it has.
    edges: Vec<ObjectId>,
    /// Every commit the walk found the client to have.
    uninteresting: HashSet<ObjectId>,
}

/// Commits reachable from `wants` and not from `haves`, found as git's `limit_list`
/// does: one walk, newest first, of both histories together, marking what the haves
/// reach as uninteresting and stopping once nothing interesting is left to visit
/// (after a few more steps, for clocks that lie). Cost follows the commits near the
/// boundary, not the whole history of the haves.
fn limit_commits(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    haves: &[ObjectId],
    plan: &ShallowPlan,
    closed: Option<&crate::odb::PackHandle>,
) -> Result<CommitWalk> {
    /// Extra steps once only uninteresting commits are queued (git's SLOP).
    const SLOP: u32 = 5;
    let mut flags: HashMap<ObjectId, u8> = HashMap::default();
    let mut heap: std::collections::BinaryHeap<(i64, ObjectId)> =
        std::collections::BinaryHeap::new();
    // Queued commits not (yet) known to be uninteresting.
    let mut interesting_queued = 0usize;
    for id in haves {
        let f = flags.entry(*id).or_insert(0);
        if *f & SEEN == 0 {
            *f = SEEN | UNINTERESTING | QUEUED;
            heap.push((graph.commit_time(id)?, *id));
        }
    }
    for id in wants {
        if flags.get(id).is_none_or(|f| f & SEEN == 0) {
            flags.insert(*id, SEEN | QUEUED);
            interesting_queued += 1;
            heap.push((graph.commit_time(id)?, *id));
        }
    }
    let mut order: Vec<ObjectId> = Vec::new();
    let mut slop = SLOP;
    while let Some((_, id)) = heap.pop() {
        let f = flags.get_mut(&id).expect("queued commits have flags");
        *f = (*f & !QUEUED) | DONE;
        let uninteresting = *f & UNINTERESTING != 0;
        if !uninteresting {
            interesting_queued -= 1;
            order.push(id);
        }
        if !plan.grafts.contains(&id) {
            let parents = graph.parents(&id)?;
            if uninteresting {
                mark_uninteresting(graph, &mut flags, &parents, plan, &mut interesting_queued)?;
            }
            for parent in parents {
                if !uninteresting && closed.is_some_and(|p| p.lookup(&parent).is_some()) {
                    // It and all it reaches go out with the closed pack.
                    continue;
                }
                let f = flags.entry(parent).or_insert(0);
                if *f & SEEN == 0 {
                    *f |= SEEN | QUEUED;
                    if *f & UNINTERESTING == 0 {
                        interesting_queued += 1;
                    }
                    let time = graph.commit_time(&parent)?;
                    heap.push((time, parent));
                }
            }
        }
        if interesting_queued == 0 {
            slop -= 1;
            if slop == 0 {
                break;
            }
        } else {
            slop = SLOP;
        }
    }
    let is_uninteresting = |flags: &HashMap<ObjectId, u8>, id: &ObjectId| {
        flags.get(id).is_some_and(|f| f & UNINTERESTING != 0)
    };
    let commits: Vec<ObjectId> = order
        .into_iter()
        .filter(|id| !is_uninteresting(&flags, id))
        .collect();
    let mut edges: Vec<ObjectId> = haves.to_vec();
    let mut edge_set: HashSet<ObjectId> = haves.iter().copied().collect();
    for id in &commits {
        if plan.grafts.contains(id) {
            continue;
        }
        for parent in graph.parents(id)? {
            if is_uninteresting(&flags, &parent) && edge_set.insert(parent) {
                edges.push(parent);
            }
        }
    }
    let uninteresting = flags
        .iter()
        .filter(|(_, f)| **f & UNINTERESTING != 0)
        .map(|(id, _)| *id)
        .collect();
    Ok(CommitWalk {
        commits,
        edges,
        uninteresting,
    })
}

/// Mark `start` and, through commits already visited, their ancestors uninteresting
/// (git's `mark_parents_uninteresting`); unvisited ones are left to the walk.
fn mark_uninteresting(
    graph: &mut Graph<'_>,
    flags: &mut HashMap<ObjectId, u8>,
    start: &[ObjectId],
    plan: &ShallowPlan,
    interesting_queued: &mut usize,
) -> Result<()> {
    let mut stack: Vec<ObjectId> = start.to_vec();
    while let Some(id) = stack.pop() {
        let f = flags.entry(id).or_insert(0);
        if *f & UNINTERESTING != 0 {
            continue;
        }
        *f |= UNINTERESTING;
        if *f & QUEUED != 0 {
            *interesting_queued -= 1;
        }
        if *f & DONE != 0 && !plan.grafts.contains(&id) {
            stack.extend(graph.parents(&id)?);
        }
    }
    Ok(())
}

/// Depth-first walk of trees from `roots` (with whether each was asked for by
/// name: such objects pass any filter), calling `emit` for every object not in
/// `skip` and not yet in `seen` (which collects what was visited) that `filter`
/// admits.
fn walk_trees(
    graph: &mut Graph<'_>,
    roots: Vec<(ObjectId, Kind, bool)>,
    seen: &mut HashSet<ObjectId>,
    skip: &Skip<'_>,
    filter: Option<&Filter>,
    mut emit: impl FnMut(WalkObject),
) -> Result<()> {
    // (id, kind, depth below the root tree, path relative to it, asked for by name)
    let mut stack: Vec<(ObjectId, Kind, u64, Vec<u8>, bool)> = roots
        .into_iter()
        .map(|(id, kind, explicit)| (id, kind, 0, Vec::new(), explicit))
        .collect();
    let mut buf = Vec::new();
    while let Some((id, kind, depth, path, explicit)) = stack.pop() {
        if skip.has(&id) || seen.contains(&id) {
            continue;
        }
        if let (Some(filter), false) = (filter, explicit) {
            let reader = &mut graph.reader;
            if !filter.admits(kind, depth, &mut || reader.size(&id))? {
                // Not marked seen: the same object higher up a tree may still go out.
                continue;
            }
        }
        seen.insert(id);
        emit(WalkObject {
            id,
            kind,
            name_hash: name_hash(&path),
        });
        if kind != Kind::Tree {
            continue;
        }
        graph.count_parsed();
        let actual = graph.reader.read_existing(&id, &mut buf)?;
        if actual != Kind::Tree {
            return Err(PackError::MalformedObject {
                oid: id,
                detail: format!("expected a tree, found a {actual}"),
            });
        }
        // Children are pushed in tree order, then that run is reversed so the
        // stack pops them in tree order; no entry list is allocated.
        let first_child = stack.len();
        for entry in gix_object::TreeRefIter::from_bytes(&buf, gix_hash::Kind::Sha1) {
            let entry = entry.map_err(|err| PackError::MalformedObject {
                oid: id,
                detail: err.to_string(),
            })?;
            if entry.mode.is_commit() {
                continue;
            }
            let child_kind = if entry.mode.is_tree() {
                Kind::Tree
            } else {
                Kind::Blob
            };
            // What the filter refuses at any size (blob:none, tree:<depth>) is not
            // even queued; size-dependent refusals are decided when popped.
            if let Some(filter) = filter {
                if !filter.admits(child_kind, depth + 1, &mut || Ok(0))? {
                    continue;
                }
            }
            let child = entry.oid.to_owned();
            if !skip.has(&child) && !seen.contains(&child) {
                let mut child_path = Vec::with_capacity(path.len() + entry.filename.len() + 1);
                if !path.is_empty() {
                    child_path.extend_from_slice(&path);
                    child_path.push(b'/');
                }
                child_path.extend_from_slice(entry.filename);
                stack.push((child, child_kind, depth + 1, child_path, false));
            }
        }
        stack[first_child..].reverse();
    }
    Ok(())
}

/// Whether everything `tips` names is reachable from `wants`: each tip is wanted
/// itself or is a commit found walking the wants' history, newest first, within
/// `limit` commits (beyond it the answer is "no", which only costs the caller its
/// shortcut).
pub fn reaches_all(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    tips: &[ObjectId],
    limit: usize,
) -> Result<bool> {
    let wanted: HashSet<ObjectId> = wants.iter().copied().collect();
    let mut missing: HashSet<ObjectId> = HashSet::default();
    for tip in tips.iter().filter(|t| !wanted.contains(*t)) {
        // A tag or tree that is not wanted could only be reached through another
        // tag; not worth a search.
        if graph.peel_to_commit(tip)? != Some(*tip) {
            return Ok(false);
        }
        missing.insert(*tip);
    }
    if missing.is_empty() {
        return Ok(true);
    }
    let mut heap: std::collections::BinaryHeap<(i64, ObjectId)> =
        std::collections::BinaryHeap::new();
    let mut seen: HashSet<ObjectId> = HashSet::default();
    for want in wants {
        if let Some(commit) = graph.peel_to_commit(want)? {
            if seen.insert(commit) {
                heap.push((graph.commit_time(&commit)?, commit));
            }
        }
    }
    while let Some((_, id)) = heap.pop() {
        if missing.remove(&id) && missing.is_empty() {
            return Ok(true);
        }
        if seen.len() > limit {
            return Ok(false);
        }
        for parent in graph.parents(&id)? {
            if seen.insert(parent) {
                heap.push((graph.commit_time(&parent)?, parent));
            }
        }
    }
    Ok(false)
}

/// Whether every want reaches one of the `common` commits: git's `ok_to_give_up`,
/// which lets the server answer `ready` and end negotiation.
pub fn ok_to_give_up(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    common: &[ObjectId],
) -> Result<bool> {
    if common.is_empty() {
        return Ok(false);
    }
    let common_set: HashSet<ObjectId> = common.iter().copied().collect();
    let mut cutoff = i64::MAX;
    for id in common {
        if let Some(commit) = graph.peel_to_commit(id)? {
            cutoff = cutoff.min(graph.commit_time(&commit)?);
        }
    }
    for want in wants {
        let Some(start) = graph.peel_to_commit(want)? else {
            continue;
        };
        let mut seen: HashSet<ObjectId> = HashSet::default();
        let mut stack = vec![start];
        let mut reached = false;
        while let Some(id) = stack.pop() {
            if common_set.contains(&id) {
                reached = true;
                break;
            }
            if !seen.insert(id) || graph.commit_time(&id)? < cutoff {
                continue;
            }
            stack.extend(graph.parents(&id)?);
        }
        if !reached {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The wants that are not reachable from `tips` (ref tips): what
/// `uploadpack.allowReachableSHA1InWant` refuses. Wants equal to a tip (or to
/// what a tip peels to) pass at once; commits are found by a commit walk, other
/// objects by walking the trees of reachable commits, stopping as soon as every
/// want is found.
pub fn unreachable_wants(
    graph: &mut Graph<'_>,
    tips: &[ObjectId],
    wants: &[ObjectId],
) -> Result<Vec<ObjectId>> {
    let mut missing: HashSet<ObjectId> = HashSet::default();
    let mut tip_set: HashSet<ObjectId> = tips.iter().copied().collect();
    let mut starts = Vec::new();
    for tip in tips {
        if !graph.db.contains(tip) {
            continue;
        }
        let (target, kind, chain) = graph.peel(tip)?;
        tip_set.insert(target);
        tip_set.extend(chain);
        if kind == Kind::Commit {
            starts.push(target);
        }
    }
    for want in wants {
        if !tip_set.contains(want) {
            missing.insert(*want);
        }
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    // Commits first: the common case (a CI checkout of a commit by SHA).
    let mut seen: HashSet<ObjectId> = HashSet::default();
    let mut stack = starts;
    let mut commits = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        missing.remove(&id);
        commits.push(id);
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        stack.extend(graph.parents(&id)?);
    }
    // Trees, blobs and tags: walk the trees of every reachable commit.
    let mut objects_seen: HashSet<ObjectId> = HashSet::default();
    for id in commits {
        let tree = graph.commit(&id)?.tree;
        walk_trees(
            graph,
            vec![(tree, Kind::Tree, true)],
            &mut objects_seen,
            &Skip {
                set: &HashSet::default(),
                closed: None,
            },
            None,
            |o| {
                missing.remove(&o.id);
            },
        )?;
        if missing.is_empty() {
            return Ok(Vec::new());
        }
    }
    let mut left: Vec<ObjectId> = missing.into_iter().collect();
    left.sort();
    Ok(left)
}
