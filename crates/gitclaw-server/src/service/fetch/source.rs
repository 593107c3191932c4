//! Where a fetch's pack comes from, decided once ([`choose`]) and written by
//! one path ([`write`]).
//!
//! In order of preference: a stored pack that is exactly the answer (a full
//! clone of the refs compaction saw) streamed as it is; the pack an identical
//! earlier clone generated (the response cache); a stored pack holding the old
//! history sent whole, followed by a walk of only what is newer (what
//! reachability bitmaps give git); and last a walk of everything wanted.

use std::{collections::HashMap, io::Write, sync::Arc, sync::Mutex};

use gitclaw_pack::{
    odb::{ObjectDb, PackHandle},
    repack::closure_key,
    walk::{
        enumerate, reaches_all, ClientHistory, Filter, Graph, ShallowPlan, WalkObject, WalkOptions,
    },
    writer::{
        stream_pack, write_pack, write_pack_after, ClientHas, Leave, WriteOptions, WriteStats,
    },
    ObjectId,
};
use gitclaw_protocol::{pktline, sideband::Band};

use super::{
    sideband::{compress_progress, Heartbeat, PackSink},
    FetchJob,
};
use crate::{
    error::GitError,
    service::response_cache::{Awaited, CacheFill, CacheKey, Follower, Lookup},
};

/// Times a request looks again after the generation it followed failed before
/// sending it anything, before it generates the pack on its own.
const FOLLOW_ATTEMPTS: usize = 3;

/// How often a request waiting for another's generation checks in.
const FOLLOW_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Commits searched, at most, for the tips a stored closure was taken of.
const CLOSURE_SEARCH_LIMIT: usize = 100_000;

/// Where the pack of one fetch comes from.
pub enum PackSource {
    /// A stored pack that is exactly the answer.
    Stored(Arc<PackHandle>),
    /// The pack an identical earlier request generated.
    Cached { file: std::fs::File, size: u64 },
    /// The pack an identical request is generating now.
    Following(Follower),
    /// Objects to write, after `base` (a stored pack, sent whole or, for a
    /// partial clone, without the types `base_leaves` names) when there is one.
    Walked {
        base: Option<Arc<PackHandle>>,
        base_leaves: Leave,
        objects: Vec<WalkObject>,
        /// Objects the client has, that deltas may be made against (thin packs).
        client: Box<ClientObjects>,
        /// How many of the objects come from a stored pack.
        stored: usize,
        /// Where a copy of the pack goes for the next identical request.
        fill: Option<CacheFill>,
        /// The full-clone key to remember if one stored pack answers it whole.
        answer_key: Option<ObjectId>,
        /// This request's turn to generate a pack, held until it is written.
        turn: Box<super::limits::GenerationSlot>,
    },
}

/// What the walk found the client to have.
pub struct ClientObjects {
    has: gix_hashtable::HashSet<ObjectId>,
    /// Of those, the trees and blobs the delta search may try as bases.
    edge_objects: Vec<WalkObject>,
    /// What its older history holds, where compaction recorded it.
    history: Option<ClientHistory>,
    /// Its partial-clone filter: what it may lack of what it has.
    filter: Option<Filter>,
}

impl PackSource {
    /// The `source` label of the metrics.
    pub fn label(&self) -> &'static str {
        match self {
            PackSource::Stored(_) => "stored",
            PackSource::Cached { .. } => "response_cache",
            PackSource::Following(_) => "shared_generation",
            PackSource::Walked { base: Some(_), .. } => "stored_and_walk",
            PackSource::Walked { base: None, .. } => "walk",
        }
    }
}

/// Decide where the pack comes from. `commons` are the haves the server has;
/// the heartbeat keeps the client hearing from us while waiting for another
/// request's generation.
pub fn choose(
    db: &ObjectDb,
    job: &FetchJob,
    graph: &mut Graph<'_>,
    commons: &[ObjectId],
    plan: &ShallowPlan,
    heartbeat: &Heartbeat<'_, '_>,
) -> Result<PackSource, GitError> {
    let filter = job.filter.as_ref().map(|f| f.filter.clone());
    let include_tags = if job.include_tag {
        job.tag_tips.clone()
    } else {
        Vec::new()
    };
    let full = commons.is_empty() && plan.is_full();
    let answer_key = (full && filter.is_none()).then(|| whole_pack_key(&job.wants, &include_tags));
    if let Some(key) = &answer_key {
        // Compaction records the pack that holds exactly the closure of the refs it
        // saw; a full clone of those refs is that pack.
        let stored = db.closure_pack(key).cloned();
        let remembered = || job.context.answers.pack_for(db, key);
        if let Some(handle) = stored.or_else(remembered) {
            if job.ofs_delta || !handle.has_ofs_deltas()? {
                return Ok(PackSource::Stored(handle));
            }
        }
    }
    // A clone asked for before (same commits, depth, filter) is answered from the
    // pack the first one wrote.
    let deepen = &job.deepen;
    let cacheable = commons.is_empty()
        && deepen.client_shallow.is_empty()
        && deepen.since.is_none()
        && deepen.not.is_empty()
        && job.deepen_not_refs.is_empty()
        && !deepen.relative;
    let cache_key = cacheable.then(|| {
        CacheKey {
            repo_id: &job.context.repo_id,
            wants: &job.wants,
            depth: deepen.depth,
            filter: job.filter.as_ref().map(|f| f.spec.as_str()),
            include_tags: &include_tags,
            ofs_delta: job.ofs_delta,
        }
        .digest()
    });
    // ... or from the pack an identical request is generating right now.
    let mut fill = None;
    if let Some(key) = cache_key {
        for _ in 0..FOLLOW_ATTEMPTS {
            match job.context.responses.lookup(key) {
                Lookup::Hit { file, size } => return Ok(PackSource::Cached { file, size }),
                Lookup::Lead(leading) => {
                    fill = leading;
                    break;
                }
                Lookup::Follow(follower) => {
                    let mut tick =
                        || heartbeat.beat(|| "Waiting for an identical request's pack\r".into());
                    match follower.wait(FOLLOW_TICK, &mut tick) {
                        Awaited::Data | Awaited::End => return Ok(PackSource::Following(follower)),
                        // Nothing was sent: look again (and maybe lead).
                        Awaited::Failed { .. } => continue,
                    }
                }
            }
        }
    }
    // Nothing stored answers it: the pack is generated, in turn. While this
    // request waits for its turn it holds no cached delta bases (a queue of
    // waiting requests would otherwise hold up to a reader's cache each).
    graph.release_scratch();
    let turn = Box::new(
        job.context
            .generations
            .acquire(&job.context.repo_id, &job.context.runtime)?,
    );
    // A clone of refs that moved on since the last compaction: the pack that holds
    // all of their old state goes out whole, and the walk covers only what is newer.
    // Only when the wants reach every tip that pack was taken of: it must not carry
    // anything the clone does not reach. A `blob:none` clone takes that pack's
    // commits, trees and tags the same way, a `tree:0` clone its commits and tags.
    let mut options = WalkOptions {
        closed: None,
        filter,
        include_tags,
        // A shallow client's haves reach commits it does not have.
        history_complete: !job.shallow(),
        expected_objects: 0,
    };
    let mut base = None;
    let mut base_leaves = Leave::Nothing;
    let leave = match options.filter {
        None => Some(Leave::Nothing),
        Some(Filter::BlobNone) => Some(Leave::Blobs),
        Some(Filter::TreeDepth(0)) => Some(Leave::TreesAndBlobs),
        _ => None,
    };
    if let (true, Some(leave)) = (full, leave) {
        let key = whole_pack_key(&job.wants, &options.include_tags);
        let closure = match (db.closure_pack(&key), &job.closure) {
            (Some(pack), _) => Some(pack.clone()),
            (None, Some((pack, tips))) if !tips.is_empty() => {
                reaches_all(graph, &job.wants, tips, CLOSURE_SEARCH_LIMIT)?.then(|| pack.clone())
            }
            _ => None,
        };
        if let Some(pack) = closure {
            if leave != Leave::Nothing {
                // Wanted trees and blobs would pass the filter: only commits and tags here.
                let mut all_commits = true;
                for want in &job.wants {
                    all_commits &= graph.peel_to_commit(want)?.is_some();
                }
                if all_commits && (job.ofs_delta || !pack.has_ofs_deltas()?) {
                    options.closed = Some(pack.clone());
                    base = Some(pack);
                    base_leaves = leave;
                }
            } else if job.ofs_delta || !pack.has_ofs_deltas()? {
                options.closed = Some(pack.clone());
                base = Some(pack);
            }
        }
    }
    let outcome = enumerate(graph, &job.wants, commons, plan, &options)?;
    let stored = match &base {
        Some(pack) if base_leaves != Leave::Nothing => pack.count_of(|k| base_leaves.keeps(k))?,
        Some(pack) => pack.num_objects() as usize,
        None => 0,
    };
    Ok(PackSource::Walked {
        base,
        base_leaves,
        objects: outcome.objects,
        client: Box::new(ClientObjects {
            has: outcome.client_has,
            edge_objects: outcome.edge_objects,
            history: outcome.client_history,
            filter: outcome.filter,
        }),
        stored,
        fill,
        answer_key,
        turn,
    })
}

/// Write the pack from `source` on the pack band, with git's progress lines.
pub fn write(
    db: &ObjectDb,
    job: &FetchJob,
    source: PackSource,
    heartbeat: &Heartbeat<'_, '_>,
) -> Result<(), GitError> {
    // The response, written through the same cell the heartbeat speaks into.
    let mut out = super::sideband::Shared(heartbeat.shared);
    let mut sink = PackSink::new(&mut out, job.sideband);
    let progress = heartbeat.progress;
    let say = |sink: &mut PackSink<'_>, line: &str| -> Result<(), GitError> {
        if progress {
            sink.band(Band::Progress, line.as_bytes())
                .map_err(GitError::ClientGone)?;
        }
        Ok(())
    };
    say(&mut sink, "Enumerating objects, done.\n")?;
    let label = source.label();
    let write_options = WriteOptions {
        ofs_delta: job.ofs_delta,
        thin: job.thin_pack,
        ..job.context.pack.clone()
    };
    let mut cached_size = 0;
    let stats = match source {
        PackSource::Stored(handle) => {
            let line = format!(
                "Counting objects: {}, done (answered by a stored pack).\n",
                handle.num_objects()
            );
            say(&mut sink, &line)?;
            Some(stream_pack(&handle, &mut sink, &mut |_, _, _| {})?)
        }
        PackSource::Cached { mut file, size } => {
            cached_size = size;
            say(
                &mut sink,
                &format!("Reusing a cached pack of {size} bytes, done.\n"),
            )?;
            std::io::copy(&mut file, &mut sink).map_err(GitError::ClientGone)?;
            None
        }
        PackSource::Following(follower) => {
            say(
                &mut sink,
                "Sharing the pack an identical request is generating.\n",
            )?;
            cached_size = follow(follower, &mut sink, heartbeat)?;
            None
        }
        PackSource::Walked {
            base,
            base_leaves,
            objects,
            client,
            stored,
            fill,
            answer_key,
            // Held to the end of the writing below.
            turn: _turn,
        } => {
            let total = objects.len() + stored;
            let line = if stored > 0 {
                format!("Counting objects: {total}, done ({stored} from a stored pack).\n")
            } else {
                format!("Counting objects: {total}, done.\n")
            };
            say(&mut sink, &line)?;
            let mut tee = Tee {
                sink: &mut sink,
                fill,
                sink_failed: None,
            };
            let mut report = compress_progress(heartbeat);
            let stats = match &base {
                Some(pack) => write_pack_after(
                    db,
                    pack,
                    base_leaves,
                    &objects,
                    &write_options,
                    &mut tee,
                    &mut report,
                )?,
                None => write_pack(
                    db,
                    &objects,
                    Some(ClientHas {
                        ids: &client.has,
                        bases: &client.edge_objects,
                        history: client.history.as_ref(),
                        filter: client.filter.as_ref(),
                    }),
                    &write_options,
                    &mut tee,
                    &mut report,
                )?,
            };
            // Followers get the rest; a pack streamed from the store as it is
            // needs no second copy in the cache.
            if let Some(fill) = tee.fill.take() {
                fill.finish(!stats.whole_pack);
            }
            if let Some(err) = tee.sink_failed.take() {
                return Err(GitError::ClientGone(err));
            }
            if let (Some(key), Some(pack), true) = (answer_key, stats.checksum, stats.whole_pack) {
                job.context.answers.remember(key, pack);
            }
            Some(stats)
        }
    };
    if let Some(stats) = &stats {
        say(&mut sink, &summary(stats))?;
    }
    let metrics = &job.context.metrics;
    metrics.pack_sources.with_label_values(&[label]).inc();
    let (bytes, objects) = match (&stats, cached_size) {
        (Some(stats), _) => (stats.bytes, u64::from(stats.objects)),
        (None, size) => (size, 0),
    };
    metrics
        .pack_bytes_sent
        .with_label_values(&[label])
        .inc_by(bytes);
    metrics
        .pack_objects_sent
        .with_label_values(&[label])
        .inc_by(objects);
    sink.send_pending(true).map_err(GitError::ClientGone)?;
    if job.sideband.is_some() {
        sink.out
            .write_all(pktline::FLUSH)
            .map_err(GitError::ClientGone)?;
    }
    sink.out.flush().map_err(GitError::ClientGone)
}

fn summary(stats: &WriteStats) -> String {
    format!(
        "Total {} (reused {}, deltas reused {}, new deltas {}), pack {} bytes\n",
        stats.objects, stats.reused, stats.reused_deltas, stats.new_deltas, stats.bytes
    )
}

/// Stream the pack another request is generating, as it grows; the number of
/// bytes sent.
fn follow(
    mut follower: Follower,
    sink: &mut PackSink<'_>,
    heartbeat: &Heartbeat<'_, '_>,
) -> Result<u64, GitError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let mut tick = || heartbeat.beat(|| "Waiting for an identical request's pack\r".into());
        match follower.wait(FOLLOW_TICK, &mut tick) {
            Awaited::End => return Ok(follower.position()),
            Awaited::Failed { reason, .. } => {
                return Err(GitError::Internal(format!(
                    "the pack this request shared with an identical one could not be made: {reason}"
                )))
            }
            Awaited::Data => loop {
                let n = follower
                    .read_published(&mut buf)
                    .map_err(|err| GitError::Internal(format!("reading a shared pack: {err}")))?;
                if n == 0 {
                    break;
                }
                sink.write_all(&buf[..n]).map_err(GitError::ClientGone)?;
            },
        }
    }
}

/// The response, and a copy of the pack data for the cache and for requests
/// following this generation. If the response's client goes away while others
/// follow, the pack is still made for them (the error is returned at the end).
struct Tee<'s, 'a> {
    sink: &'s mut PackSink<'a>,
    fill: Option<CacheFill>,
    sink_failed: Option<std::io::Error>,
}

impl Write for Tee<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.sink_failed.is_none() {
            if let Err(err) = self.sink.write_all(data) {
                let followed = self
                    .fill
                    .as_mut()
                    .is_some_and(|fill| !fill.abandon_unless_followed());
                if !followed {
                    return Err(err);
                }
                self.sink_failed = Some(err);
            }
        } else if self
            .fill
            .as_mut()
            .is_none_or(|fill| fill.abandon_unless_followed())
        {
            // The followers went away too.
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        if let Some(fill) = &mut self.fill {
            fill.copy(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.sink_failed.is_some() {
            return Ok(());
        }
        self.sink.flush()
    }
}

/// Full clones that one stored pack answered exactly: digest of (wants, included
/// tags) → that pack's checksum. Commit ids and pack checksums name immutable
/// content, so an entry is never stale and holds for every repository that has
/// the pack; the map is bounded by starting afresh when full.
#[derive(Default)]
pub struct WholePackAnswers(Mutex<HashMap<ObjectId, ObjectId>>);

const WHOLE_PACK_ANSWERS_MAX: usize = 4096;

impl WholePackAnswers {
    fn pack_for(&self, db: &ObjectDb, key: &ObjectId) -> Option<Arc<PackHandle>> {
        let pack = *self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key)?;
        db.packs().iter().find(|p| *p.hash() == pack).cloned()
    }

    fn remember(&self, key: ObjectId, pack: ObjectId) {
        let mut answers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if answers.len() >= WHOLE_PACK_ANSWERS_MAX {
            answers.clear();
        }
        answers.insert(key, pack);
    }
}

/// The key of a full clone's answer. When every tag `include-tag` could add is
/// wanted anyway, the answer is exactly the closure of the wants, the key
/// compaction records its packs under.
fn whole_pack_key(wants: &[ObjectId], include_tags: &[ObjectId]) -> ObjectId {
    use sha1::Digest;
    let wanted: std::collections::HashSet<&ObjectId> = wants.iter().collect();
    if include_tags.iter().all(|t| wanted.contains(t)) {
        return closure_key(wants);
    }
    let mut wants = wants.to_vec();
    wants.sort();
    wants.dedup();
    let mut tags = include_tags.to_vec();
    tags.sort();
    let mut hasher = sha1::Sha1::new();
    for id in &wants {
        hasher.update(id.as_bytes());
    }
    hasher.update(b"tags");
    for id in &tags {
        hasher.update(id.as_bytes());
    }
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::response_cache::ResponseCache;

    /// A client that is gone: every write fails.
    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    fn leader(cache: &Arc<ResponseCache>, key: ObjectId) -> CacheFill {
        match cache.lookup(key) {
            Lookup::Lead(Some(fill)) => fill,
            _ => panic!("expected to lead"),
        }
    }

    #[test]
    fn when_the_leaders_client_goes_away_the_pack_is_still_made_for_its_followers() {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            ResponseCache::open(dir.path().join("c"), 1 << 20, &Default::default()).unwrap();
        let key = ObjectId::from_bytes_or_panic(&[1; 20]);
        let fill = leader(&cache, key);
        let Lookup::Follow(mut follower) = cache.lookup(key) else {
            panic!("expected to follow");
        };
        let mut gone = Gone;
        let mut sink = PackSink::new(&mut gone, None);
        let mut tee = Tee {
            sink: &mut sink,
            fill: Some(fill),
            sink_failed: None,
        };
        tee.write_all(b"PACK and the rest").unwrap();
        tee.write_all(b" of it").unwrap();
        assert!(tee.sink_failed.is_some(), "the leader's error is kept");
        tee.fill.take().unwrap().finish(true);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while let Awaited::Data = follower.wait(FOLLOW_TICK, &mut || {}) {
            let n = follower.read_published(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"PACK and the rest of it");
    }

    #[test]
    fn when_nobody_follows_a_gone_client_stops_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            ResponseCache::open(dir.path().join("c"), 1 << 20, &Default::default()).unwrap();
        let key = ObjectId::from_bytes_or_panic(&[2; 20]);
        let mut gone = Gone;
        let mut sink = PackSink::new(&mut gone, None);
        let mut tee = Tee {
            sink: &mut sink,
            fill: Some(leader(&cache, key)),
            sink_failed: None,
        };
        assert!(tee.write_all(b"PACK").is_err());
        assert_eq!(cache.in_flight(), 0, "the flight is over");
        drop(tee);
        assert!(cache.get(&key).is_none());
    }
}
