//! Rename detection as `git diff` does it by default (git's diffcore-rename
//! with `-M`, 50% similarity, `diff.renameLimit` 1000), over the changes of
//! [`diff_trees`](crate::files::diff_trees): a deleted path and an added one
//! become one rename when
//!
//! 1. they name the same object (an exact rename; among several deleted
//!    paths with the object, one of the same file name first, else the
//!    first in tree order; a link or a submodule only to its own kind);
//! 2. else, when the file name is the only one of its kind among the deleted
//!    and among the added paths, their contents are at least 75% similar;
//! 3. else, from every deleted-added pair at least 50% similar, the most
//!    similar first (a same file name breaking ties), each path used once;
//!    skipped, as git skips it, when more than 1000 × 1000 pairs are left.
//!
//! Similarity is git's estimate: the contents cut into lines (or 64-byte
//! runs), each hashed; how many bytes of the added file's lines the deleted
//! file had, of the larger size, out of 60,000. Only regular files are
//! compared, and a pair whose sizes differ more than the score allows is not
//! read. What an estimate reads and keeps is bounded ([`RenameLimits`]):
//! past a bound the detection stops short and says so.

use std::collections::HashMap;

use gix_hash::ObjectId;
use gix_object::tree::EntryKind;

use crate::{
    files::{copy_stream, open_blob, BlobContent, Change, ChangeKind},
    odb::{ObjectDb, ObjectReader},
    Result,
};

/// A similarity score's scale: git's `MAX_SCORE`.
pub const MAX_SCORE: u32 = 60_000;

/// The least score of a rename by content: 50%.
pub const MIN_SCORE: u32 = 30_000;

/// The least score of a rename between two files of the same name found by
/// that name: halfway from [`MIN_SCORE`] to [`MAX_SCORE`] (75%).
pub const MIN_BASENAME_SCORE: u32 = MIN_SCORE + (MAX_SCORE - MIN_SCORE) / 2;

/// Git's `diff.renameLimit`: no pairwise comparison when more than its
/// square of pairs are left.
pub const RENAME_LIMIT: usize = 1000;

/// The candidates git keeps for each added path in the pairwise step.
const CANDIDATES_PER_DST: usize = 4;

/// The most deleted paths with one object an exact rename weighs.
const MAX_IDENTICAL: usize = 100;

/// Bytes git looks at to tell binary content (a NUL among them) from text.
const FIRST_FEW_BYTES: usize = 8000;

/// The hash space of git's line hashes.
const HASHBASE: u32 = 107_927;

/// Where the path came from in a rename, and how similar the two contents
/// are, out of [`MAX_SCORE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    pub path: Vec<u8>,
    pub score: u32,
}

impl Renamed {
    /// The percentage git prints (`R086`): rounded down.
    pub fn similarity(&self) -> u32 {
        (f64::from(self.score) * 100.0 / f64::from(MAX_SCORE)) as u32
    }
}

/// What a detection may read, hold and compute; past any of them it stops
/// short ([`Detection::OverBudget`]).
#[derive(Debug, Clone, Copy)]
pub struct RenameLimits {
    /// Content bytes read to estimate similarities.
    pub max_bytes: u64,
    /// Line-hash entries held (8 bytes each).
    pub max_entries: usize,
    /// Entries gone through comparing pairs.
    pub max_work: u64,
}

impl Default for RenameLimits {
    /// 64 MiB read, 32 MiB of hashes held, 200 million entries compared
    /// (some 0.2 s of one core; 1000 × 1000 files of 100 lines each).
    fn default() -> Self {
        RenameLimits {
            max_bytes: 64 << 20,
            max_entries: 4 << 20,
            max_work: 200_000_000,
        }
    }
}

/// How far a detection went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// As far as git goes.
    Complete,
    /// The pairwise step was skipped, as git skips it, for more than
    /// [`RENAME_LIMIT`]² pairs: exact renames and those found by file name
    /// only.
    OverRenameLimit,
    /// A [`RenameLimits`] bound was reached in the step by file name (exact
    /// renames only) or in the pairwise step (exact ones and those found by
    /// file name).
    OverBudget,
}

/// `changes` (in [`diff_trees`](crate::files::diff_trees)'s order) with the
/// renames found: each rename in its added path's place, its deleted path
/// gone.
pub fn detect_renames(
    db: &ObjectDb,
    reader: &mut ObjectReader<'_>,
    changes: Vec<Change>,
    limits: &RenameLimits,
) -> Result<(Vec<Change>, Detection)> {
    let side = |c: &Change, (kind, id): (EntryKind, ObjectId)| Side {
        path: c.path.clone(),
        kind,
        id,
    };
    let mut srcs = Vec::new();
    let mut src_of = Vec::new();
    let mut dsts = Vec::new();
    let mut dst_of = Vec::new();
    for (i, change) in changes.iter().enumerate() {
        match (change.kind, change.old, change.new) {
            (ChangeKind::Deleted, Some(old), None) => {
                srcs.push(side(change, old));
                src_of.push(i);
            }
            (ChangeKind::Added, None, Some(new)) => {
                dsts.push(side(change, new));
                dst_of.push(i);
            }
            _ => {}
        }
    }
    if srcs.is_empty() || dsts.is_empty() {
        return Ok((changes, Detection::Complete));
    }
    let mut pairing = Pairing::new(srcs.len(), dsts.len());
    pairing.exact(&srcs, &dsts);
    let mut estimates = Estimates::new(db, reader, *limits, &srcs, &dsts);
    let detection = match pairing.clone().by_name(&srcs, &dsts, &mut estimates)? {
        None => Detection::OverBudget,
        Some(by_name) => {
            pairing = by_name;
            match pairing.clone().pairwise(&srcs, &dsts, &mut estimates)? {
                Step::Done(all) => {
                    pairing = all;
                    Detection::Complete
                }
                Step::OverRenameLimit => Detection::OverRenameLimit,
                Step::OverBudget => Detection::OverBudget,
            }
        }
    };
    // Git's write-back: each added path that was found renamed in its
    // place, the deleted paths used gone, the rest as they were.
    let mut renamed_at: HashMap<usize, (usize, u32)> = HashMap::new();
    for (d, matched) in pairing.dst_match.iter().enumerate() {
        if let Some((s, score)) = matched {
            renamed_at.insert(dst_of[d], (*s, *score));
        }
    }
    let used_at: std::collections::HashSet<usize> = pairing
        .src_used
        .iter()
        .enumerate()
        .filter(|(_, used)| **used)
        .map(|(s, _)| src_of[s])
        .collect();
    let sources: Vec<Option<(EntryKind, ObjectId)>> =
        src_of.iter().map(|&i| changes[i].old).collect();
    let out = changes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !used_at.contains(i))
        .map(|(i, mut change)| {
            if let Some((s, score)) = renamed_at.get(&i) {
                change.kind = ChangeKind::Renamed;
                change.old = sources[*s];
                change.renamed_from = Some(Renamed {
                    path: srcs[*s].path.clone(),
                    score: *score,
                });
            }
            change
        })
        .collect();
    Ok((out, detection))
}

/// One side of a deleted or added path.
struct Side {
    path: Vec<u8>,
    kind: EntryKind,
    id: ObjectId,
}

fn is_regular(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::Blob | EntryKind::BlobExecutable)
}

/// Whether two paths end in the same file name (git's `basename_same`).
fn basename_same(a: &[u8], b: &[u8]) -> bool {
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        i -= 1;
        j -= 1;
        if a[i] != b[j] {
            return false;
        }
        if a[i] == b'/' {
            return true;
        }
    }
    (i == 0 || a[i - 1] == b'/') && (j == 0 || b[j - 1] == b'/')
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// Which deleted path each added one was paired with.
#[derive(Clone)]
struct Pairing {
    src_used: Vec<bool>,
    /// (source, score) for each added path found renamed.
    dst_match: Vec<Option<(usize, u32)>>,
}

enum Step {
    Done(Pairing),
    OverRenameLimit,
    OverBudget,
}

impl Pairing {
    fn new(srcs: usize, dsts: usize) -> Pairing {
        Pairing {
            src_used: vec![false; srcs],
            dst_match: vec![None; dsts],
        }
    }

    fn record(&mut self, dst: usize, src: usize, score: u32) {
        self.src_used[src] = true;
        self.dst_match[dst] = Some((src, score));
    }

    /// Step 1: added paths naming a deleted path's object.
    fn exact(&mut self, srcs: &[Side], dsts: &[Side]) {
        let mut by_id: HashMap<ObjectId, Vec<usize>> = HashMap::new();
        for (s, src) in srcs.iter().enumerate() {
            by_id.entry(src.id).or_default().push(s);
        }
        for (d, dst) in dsts.iter().enumerate() {
            let Some(candidates) = by_id.get(&dst.id) else {
                continue;
            };
            let mut best: Option<(usize, u8)> = None;
            let mut left = MAX_IDENTICAL;
            for &s in candidates {
                let src = &srcs[s];
                if !(is_regular(src.kind) && is_regular(dst.kind)) && src.kind != dst.kind {
                    continue;
                }
                if self.src_used[s] {
                    continue;
                }
                let score = 1 + u8::from(basename_same(&src.path, &dst.path));
                if best.is_none_or(|(_, b)| score > b) {
                    best = Some((s, score));
                    if score == 2 {
                        break;
                    }
                }
                left -= 1;
                if left == 0 {
                    break;
                }
            }
            if let Some((s, _)) = best {
                self.record(d, s, MAX_SCORE);
            }
        }
    }

    /// Step 2: a file name unique among the deleted and among the added
    /// paths left; `None` when the budget ran out.
    fn by_name(
        mut self,
        srcs: &[Side],
        dsts: &[Side],
        estimates: &mut Estimates<'_, '_, '_>,
    ) -> Result<Option<Pairing>> {
        let left: Vec<usize> = (0..srcs.len()).filter(|&s| !self.src_used[s]).collect();
        let mut sources: HashMap<&[u8], Option<usize>> = HashMap::new();
        for &s in &left {
            sources
                .entry(basename(&srcs[s].path))
                .and_modify(|unique| *unique = None)
                .or_insert(Some(s));
        }
        let mut dests: HashMap<&[u8], Option<usize>> = HashMap::new();
        for (d, dst) in dsts.iter().enumerate() {
            if self.dst_match[d].is_none() {
                dests
                    .entry(basename(&dst.path))
                    .and_modify(|unique| *unique = None)
                    .or_insert(Some(d));
            }
        }
        for &s in &left {
            let name = basename(&srcs[s].path);
            let (Some(Some(unique_src)), Some(Some(d))) = (sources.get(name), dests.get(name))
            else {
                continue;
            };
            if *unique_src != s || self.dst_match[*d].is_some() {
                continue;
            }
            let Some(score) = estimates.similarity(s, *d, MIN_BASENAME_SCORE)? else {
                return Ok(None);
            };
            if score >= MIN_BASENAME_SCORE {
                self.record(*d, s, score);
            }
        }
        Ok(Some(self))
    }

    /// Step 3: every pair left, the best candidates of each added path
    /// sorted by score, taken while at least [`MIN_SCORE`].
    fn pairwise(
        mut self,
        srcs: &[Side],
        dsts: &[Side],
        estimates: &mut Estimates<'_, '_, '_>,
    ) -> Result<Step> {
        let left: Vec<usize> = (0..srcs.len()).filter(|&s| !self.src_used[s]).collect();
        let open: Vec<usize> = (0..dsts.len())
            .filter(|&d| self.dst_match[d].is_none())
            .collect();
        if left.is_empty() || open.is_empty() {
            return Ok(Step::Done(self));
        }
        if open.len().saturating_mul(left.len()) > RENAME_LIMIT * RENAME_LIMIT {
            return Ok(Step::OverRenameLimit);
        }
        let mut matrix: Vec<Candidate> = Vec::with_capacity(open.len() * CANDIDATES_PER_DST);
        for &d in &open {
            let mut best = [Candidate::EMPTY; CANDIDATES_PER_DST];
            for &s in &left {
                let Some(score) = estimates.similarity(s, d, MIN_SCORE)? else {
                    return Ok(Step::OverBudget);
                };
                let candidate = Candidate {
                    pair: Some((s, d)),
                    score,
                    same_name: basename_same(&srcs[s].path, &dsts[d].path),
                };
                // Git's record_if_better: the worst kept (the first of equals)
                // gives way to a strictly better one.
                let mut worst = 0;
                for i in 1..CANDIDATES_PER_DST {
                    if best[i].order(&best[worst]).is_gt() {
                        worst = i;
                    }
                }
                if best[worst].order(&candidate).is_gt() {
                    best[worst] = candidate;
                }
            }
            matrix.extend(best);
        }
        matrix.sort_by(Candidate::order);
        for candidate in &matrix {
            let Some((s, d)) = candidate.pair else {
                break;
            };
            if candidate.score < MIN_SCORE {
                break;
            }
            if self.dst_match[d].is_some() || self.src_used[s] {
                continue;
            }
            self.record(d, s, candidate.score);
        }
        Ok(Step::Done(self))
    }
}

/// A candidate pair of the pairwise step (`pair` none: an empty slot).
#[derive(Clone, Copy)]
struct Candidate {
    pair: Option<(usize, usize)>,
    score: u32,
    same_name: bool,
}

impl Candidate {
    const EMPTY: Candidate = Candidate {
        pair: None,
        score: 0,
        same_name: false,
    };

    /// Git's score_compare: empty slots last, then the higher score first,
    /// then a same file name first.
    fn order(&self, other: &Candidate) -> std::cmp::Ordering {
        match (self.pair, other.pair) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => other
                .score
                .cmp(&self.score)
                .then(other.same_name.cmp(&self.same_name)),
        }
    }
}

/// Similarity estimates, the contents' line hashes made once each and kept,
/// within [`RenameLimits`].
struct Estimates<'a, 'r, 'db> {
    db: &'db ObjectDb,
    reader: &'a mut ObjectReader<'r>,
    limits: RenameLimits,
    srcs: &'a [Side],
    dsts: &'a [Side],
    sizes: HashMap<ObjectId, u64>,
    spans: HashMap<ObjectId, Vec<(u32, u32)>>,
    bytes_read: u64,
    entries_held: usize,
    work: u64,
}

impl<'a, 'r, 'db> Estimates<'a, 'r, 'db> {
    fn new(
        db: &'db ObjectDb,
        reader: &'a mut ObjectReader<'r>,
        limits: RenameLimits,
        srcs: &'a [Side],
        dsts: &'a [Side],
    ) -> Self {
        Estimates {
            db,
            reader,
            limits,
            srcs,
            dsts,
            sizes: HashMap::new(),
            spans: HashMap::new(),
            bytes_read: 0,
            entries_held: 0,
            work: 0,
        }
    }

    /// Git's estimate_similarity of deleted path `s` and added path `d`,
    /// with `minimum` deciding which sizes are too far apart to read;
    /// `None` past a limit.
    fn similarity(&mut self, s: usize, d: usize, minimum: u32) -> Result<Option<u32>> {
        let (src, dst) = (&self.srcs[s], &self.dsts[d]);
        if !is_regular(src.kind) || !is_regular(dst.kind) {
            return Ok(Some(0));
        }
        let (src_id, dst_id) = (src.id, dst.id);
        let (src_size, dst_size) = (self.size(&src_id)?, self.size(&dst_id)?);
        let max = src_size.max(dst_size);
        let delta = max - src_size.min(dst_size);
        if (max as f64) * f64::from(MAX_SCORE - minimum) < (delta as f64) * f64::from(MAX_SCORE) {
            return Ok(Some(0));
        }
        if !self.hash(&src_id, src_size)? || !self.hash(&dst_id, dst_size)? {
            return Ok(None);
        }
        if dst_size == 0 {
            return Ok(Some(0));
        }
        let (a, b) = (&self.spans[&src_id], &self.spans[&dst_id]);
        self.work += (a.len() + b.len()) as u64;
        if self.work > self.limits.max_work {
            return Ok(None);
        }
        let copied = copied_bytes(a, b);
        Ok(Some(
            (copied as f64 * f64::from(MAX_SCORE) / max as f64) as u32,
        ))
    }

    fn size(&mut self, id: &ObjectId) -> Result<u64> {
        if let Some(size) = self.sizes.get(id) {
            return Ok(*size);
        }
        let size = self.reader.size(id)?;
        self.sizes.insert(*id, size);
        Ok(size)
    }

    /// Make blob `id`'s line hashes unless made; false past a limit.
    fn hash(&mut self, id: &ObjectId, size: u64) -> Result<bool> {
        if self.spans.contains_key(id) {
            return Ok(true);
        }
        self.bytes_read += size;
        if self.bytes_read > self.limits.max_bytes {
            return Ok(false);
        }
        let mut hasher = SpanHasher::default();
        match open_blob(self.db, self.reader, id)? {
            BlobContent::Whole(data) => hasher.feed(&data),
            BlobContent::Stream(size, mut stream) => copy_stream(id, size, &mut stream, |data| {
                hasher.feed(data);
                Ok(())
            })?,
        }
        let spans = hasher.finish();
        self.entries_held += spans.len();
        if self.entries_held > self.limits.max_entries {
            return Ok(false);
        }
        self.spans.insert(*id, spans);
        Ok(true)
    }
}

/// Bytes of the destination's lines the source has too: for each line
/// hash, the lesser of the two byte counts (git's diffcore_count_changes).
fn copied_bytes(src: &[(u32, u32)], dst: &[(u32, u32)]) -> u64 {
    // Both sorted by hash, each hash once: a merge, without branches on
    // the comparisons (which a branch predictor cannot guess).
    let (mut copied, mut i, mut j) = (0u64, 0, 0);
    while i < src.len() && j < dst.len() {
        let ((a, a_count), (b, b_count)) = (src[i], dst[j]);
        copied += u64::from(a_count.min(b_count)) * u64::from(a == b);
        i += usize::from(a <= b);
        j += usize::from(b <= a);
    }
    copied
}

/// Git's hash_chars, fed the content in pieces: the content cut after each
/// LF or 64 bytes, each piece hashed, the bytes of each hash counted. In
/// text (no NUL in the first 8000 bytes) a CR before an LF is left out.
#[derive(Default)]
struct SpanHasher {
    /// The first bytes, until they tell text from binary.
    head: Vec<u8>,
    /// Some(is_text) once told.
    text: Option<bool>,
    /// A CR seen last, in text: left out if an LF follows.
    pending_cr: bool,
    accum1: u32,
    accum2: u32,
    n: u32,
    /// Each piece's hash and length, summed by hash at the end.
    pieces: Vec<(u32, u32)>,
}

impl SpanHasher {
    fn feed(&mut self, data: &[u8]) {
        if self.text.is_none() {
            let want = FIRST_FEW_BYTES - self.head.len();
            let take = want.min(data.len());
            self.head.extend_from_slice(&data[..take]);
            if self.head.len() < FIRST_FEW_BYTES {
                return;
            }
            self.decide();
            self.feed(&data[take..]);
            return;
        }
        let text = self.text == Some(true);
        for &c in data {
            if self.pending_cr {
                self.pending_cr = false;
                if c != b'\n' {
                    self.byte(b'\r');
                }
            }
            if text && c == b'\r' {
                self.pending_cr = true;
                continue;
            }
            self.byte(c);
        }
    }

    /// Tell text from binary by the bytes held, then hash them.
    fn decide(&mut self) {
        self.text = Some(!self.head.contains(&0));
        let head = std::mem::take(&mut self.head);
        self.feed(&head);
    }

    fn byte(&mut self, c: u8) {
        let old1 = self.accum1;
        self.accum1 = (self.accum1 << 7) ^ (self.accum2 >> 25);
        self.accum2 = (self.accum2 << 7) ^ (old1 >> 25);
        self.accum1 = self.accum1.wrapping_add(u32::from(c));
        self.n += 1;
        if self.n < 64 && c != b'\n' {
            return;
        }
        self.flush();
    }

    fn flush(&mut self) {
        let hash = self.accum1.wrapping_add(self.accum2.wrapping_mul(0x61)) % HASHBASE;
        self.pieces.push((hash, self.n));
        // Summed now and then: at most HASHBASE hashes stay, however long
        // the content.
        if self.pieces.len() >= 2 * HASHBASE as usize {
            self.compact();
        }
        self.n = 0;
        self.accum1 = 0;
        self.accum2 = 0;
    }

    fn finish(mut self) -> Vec<(u32, u32)> {
        if self.text.is_none() {
            self.decide();
        }
        if self.pending_cr {
            self.pending_cr = false;
            self.byte(b'\r');
        }
        if self.n > 0 {
            self.flush();
        }
        self.compact();
        self.pieces.shrink_to_fit();
        self.pieces
    }

    /// Sort the pieces by hash and sum each hash's lengths.
    fn compact(&mut self) {
        self.pieces.sort_unstable_by_key(|p| p.0);
        let mut kept = 0;
        for i in 0..self.pieces.len() {
            if kept > 0 && self.pieces[kept - 1].0 == self.pieces[i].0 {
                self.pieces[kept - 1].1 += self.pieces[i].1;
            } else {
                self.pieces[kept] = self.pieces[i];
                kept += 1;
            }
        }
        self.pieces.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(data: &[u8]) -> Vec<(u32, u32)> {
        let mut hasher = SpanHasher::default();
        hasher.feed(data);
        hasher.finish()
    }

    #[test]
    fn hashing_in_pieces_is_hashing_whole() {
        let mut data = Vec::new();
        for i in 0..3000 {
            data.extend_from_slice(format!("line {i}\r\n").as_bytes());
            if i % 7 == 0 {
                data.extend_from_slice(&[b'x'; 100]);
            }
            if i % 11 == 0 {
                data.push(b'\r');
            }
        }
        let whole = spans(&data);
        for piece in [1, 2, 63, 64, 4096, 7999, 8000, 8001] {
            let mut hasher = SpanHasher::default();
            for chunk in data.chunks(piece) {
                hasher.feed(chunk);
            }
            assert_eq!(hasher.finish(), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn text_leaves_out_a_cr_before_an_lf_and_binary_keeps_it() {
        assert_eq!(spans(b"a\r\nb\r\n"), spans(b"a\nb\n"));
        assert_ne!(spans(b"a\r\nb\r\n\0"), spans(b"a\nb\n\0"));
        // A lone CR, and one at the very end, are content.
        assert_ne!(spans(b"a\rb\n"), spans(b"ab\n"));
        assert_ne!(spans(b"a\n\r"), spans(b"a\n"));
        // A NUL past the first 8000 bytes makes no binary.
        let mut late = vec![b'a'; 8000];
        late.extend_from_slice(b"\r\n\0");
        let mut without = vec![b'a'; 8000];
        without.extend_from_slice(b"\n\0");
        assert_eq!(spans(&late), spans(&without));
    }

    #[test]
    fn long_content_holds_one_entry_a_hash() {
        // 500,000 pieces of 1,000 kinds, fed whole and in pieces.
        let data: Vec<u8> = (0..500_000)
            .flat_map(|i| format!("{}\n", i % 1000).into_bytes())
            .collect();
        let whole = spans(&data);
        assert_eq!(whole.len(), 1000);
        assert_eq!(
            whole.iter().map(|s| u64::from(s.1)).sum::<u64>(),
            data.len() as u64
        );
        let mut hasher = SpanHasher::default();
        for chunk in data.chunks(4096) {
            hasher.feed(chunk);
            assert!(hasher.pieces.len() < 2 * HASHBASE as usize);
        }
        assert_eq!(hasher.finish(), whole);
    }

    #[test]
    fn pieces_end_at_an_lf_or_after_64_bytes() {
        // 64 bytes with no LF is one piece; the 65th starts another.
        let long = spans(&[b'y'; 65]);
        assert_eq!(long.iter().map(|s| s.1).sum::<u32>(), 65);
        assert_eq!(long.len(), 2);
        // Equal lines count together.
        assert_eq!(spans(b"same\nsame\n"), vec![(spans(b"same\n")[0].0, 10)]);
    }

    #[test]
    fn copied_bytes_are_the_lesser_count_of_each_shared_hash() {
        let src = [(1, 5), (3, 2), (4, 9), (8, 1)];
        let dst = [(0, 7), (3, 6), (4, 4), (9, 3)];
        assert_eq!(copied_bytes(&src, &dst), 2 + 4);
        assert_eq!(copied_bytes(&dst, &src), 2 + 4);
        assert_eq!(copied_bytes(&src, &src), 5 + 2 + 9 + 1);
        assert_eq!(copied_bytes(&src, &[]), 0);
    }

    #[test]
    fn basenames_compare_from_the_end() {
        assert!(basename_same(b"a/b/c.txt", b"x/c.txt"));
        assert!(basename_same(b"c.txt", b"x/c.txt"));
        assert!(basename_same(b"c.txt", b"c.txt"));
        assert!(!basename_same(b"a/bc.txt", b"x/c.txt"));
        assert!(!basename_same(b"bc.txt", b"c.txt"));
        assert!(!basename_same(b"c.txt", b"d.txt"));
        assert_eq!(basename(b"a/b/c"), b"c");
        assert_eq!(basename(b"c"), b"c");
    }
}
