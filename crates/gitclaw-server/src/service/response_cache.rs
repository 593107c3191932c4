//! A disk cache of generated clone packs, for CI systems that clone the same
//! commit many times (full, shallow or partial): the second identical request is
//! answered from the file the first one wrote, with no walk and no pack writing.
//!
//! What is cached: the pack data (without sideband framing) of a fetch with no
//! haves, keyed by the repository id and everything that shapes the pack — the
//! wants, the depth, the filter, the included tags and the client's `ofs-delta`.
//! Wants are commit (or object) ids, so the objects a key stands for never
//! change and an entry can never be stale; a repository's deletion simply leaves
//! entries nobody can ask for until they age out. The cache holds at most
//! `max_bytes`; the least recently used entries go first. Files are written under
//! a temporary name and renamed once the pack is complete, so a reader never sees
//! a partial pack as an entry.
//!
//! Single flight: while a pack is being generated for a key, identical requests
//! do not generate it again. [`ResponseCache::lookup`] makes the first request
//! the leader of a [`Flight`] (its [`CacheFill`] writes the pack to a file as it
//! goes out), and every identical request that arrives meanwhile a [`Follower`]
//! that streams the same file as it grows, the way Gitaly's pack-objects cache
//! does. The generation belongs to the flight, not to the leader's client: if
//! that client goes away while others follow, the pack is still finished for
//! them. A generation that fails ends its flight; followers that have received
//! nothing yet look up again (one of them leads a new generation), the others
//! get the error; nothing of a failed generation is kept.

use std::{
    collections::HashMap,
    io::{Read, Seek, Write},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Duration,
};

use gitclaw_pack::ObjectId;
use moka::{policy::EvictionPolicy, sync::Cache};
use sha1::Digest;

use crate::metrics::Metrics;

/// The `cache` label of this cache's metrics.
const CACHE_NAME: &str = "responses";

/// The cache; shared by all requests.
pub struct ResponseCache {
    dir: PathBuf,
    max_bytes: u64,
    metrics: Arc<Metrics>,
    entries: Cache<ObjectId, Arc<Entry>>,
    /// Packs being generated now, by key. Entries and flights change under this
    /// lock, so a lookup finds a key either cached, in flight, or neither.
    flights: Mutex<HashMap<ObjectId, Arc<Flight>>>,
    /// How often each key was asked for lately, for `min_occurrences`.
    seen: Cache<ObjectId, u32>,
    /// A generated pack is kept once its key has been asked for this many times.
    min_occurrences: u32,
}

/// One cached pack: its own file (each fill writes a new name, so removing a
/// replaced or evicted entry never touches a newer file of the same key).
struct Entry {
    path: PathBuf,
    size: u64,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// What shapes a cacheable clone pack.
pub struct CacheKey<'a> {
    pub repo_id: &'a str,
    pub wants: &'a [ObjectId],
    pub depth: Option<u32>,
    pub filter: Option<&'a str>,
    pub include_tags: &'a [ObjectId],
    pub ofs_delta: bool,
}

impl CacheKey<'_> {
    pub fn digest(&self) -> ObjectId {
        let mut wants = self.wants.to_vec();
        wants.sort();
        wants.dedup();
        let mut tags = self.include_tags.to_vec();
        tags.sort();
        let mut h = sha1::Sha1::new();
        h.update(b"gitclaw clone pack v1\0");
        h.update(self.repo_id.as_bytes());
        h.update(b"\0");
        for id in &wants {
            h.update(id.as_bytes());
        }
        h.update(format!(
            "\0depth={:?}\0filter={:?}\0ofs={}\0",
            self.depth, self.filter, self.ofs_delta
        ));
        for id in &tags {
            h.update(id.as_bytes());
        }
        ObjectId::from_bytes_or_panic(&h.finalize())
    }
}

/// Weights are bytes, or for a bound past 2 GiB as many bytes as keep every
/// weight within moka's `u32`.
fn weight_unit(max_bytes: u64) -> u64 {
    (max_bytes >> 31).max(1)
}

/// Keys whose occurrences are remembered, at most (about 100 bytes each).
const SEEN_KEYS: u64 = 100_000;

/// Generated pack data is handed to followers in pieces of about this size.
const PUBLISH_BYTES: usize = 256 * 1024;

impl ResponseCache {
    /// A cache in `dir` (created), holding at most `max_bytes`; entries left by an
    /// earlier run are taken up, half-written ones removed. Every generated pack
    /// is kept.
    pub fn open(
        dir: PathBuf,
        max_bytes: u64,
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<Arc<ResponseCache>> {
        Self::open_with(dir, max_bytes, 1, metrics)
    }

    /// [`ResponseCache::open`], keeping a generated pack only once its key has
    /// been asked for `min_occurrences` times (or it was shared while generated).
    pub fn open_with(
        dir: PathBuf,
        max_bytes: u64,
        min_occurrences: u32,
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<Arc<ResponseCache>> {
        std::fs::create_dir_all(&dir)?;
        let unit = weight_unit(max_bytes);
        let entries = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .max_capacity(max_bytes / unit)
            .weigher(move |_, entry: &Arc<Entry>| {
                u32::try_from(entry.size.div_ceil(unit)).unwrap_or(u32::MAX)
            })
            .eviction_listener({
                let metrics = metrics.clone();
                move |_, entry: Arc<Entry>, cause: moka::notification::RemovalCause| {
                    if cause.was_evicted() {
                        metrics
                            .cache_evictions
                            .with_label_values(&[CACHE_NAME])
                            .inc();
                    }
                    let _ = std::fs::remove_file(&entry.path);
                }
            })
            .build();
        let cache = Arc::new(ResponseCache {
            dir,
            max_bytes,
            metrics: metrics.clone(),
            entries,
            flights: Mutex::new(HashMap::new()),
            seen: Cache::new(SEEN_KEYS),
            min_occurrences: min_occurrences.max(1),
        });
        for entry in std::fs::read_dir(&cache.dir)?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = name
                .strip_suffix(".pack")
                .and_then(|stem| stem.split('-').next())
                .and_then(|hex| ObjectId::from_hex(hex.as_bytes()).ok());
            match (key, entry.metadata()) {
                (Some(key), Ok(meta)) if meta.is_file() => {
                    let size = meta.len();
                    cache.entries.insert(key, Arc::new(Entry { path, size }));
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        cache.entries.run_pending_tasks();
        Ok(cache)
    }

    /// The cached pack for `key`, opened, with its size.
    pub fn get(&self, key: &ObjectId) -> Option<(std::fs::File, u64)> {
        let entry = self.entries.get(key);
        self.metrics.cache_lookup(CACHE_NAME, entry.is_some());
        let entry = entry?;
        match std::fs::File::open(&entry.path) {
            Ok(file) => Some((file, entry.size)),
            Err(_) => {
                // Removed behind our back: forget it.
                self.entries.invalidate(key);
                None
            }
        }
    }

    /// Where the pack for `key` comes from: the cache, a generation in flight, or
    /// a generation this request leads (`Lead(None)` when the cache is off or its
    /// disk refuses the file: then nothing is shared).
    pub fn lookup(self: &Arc<Self>, key: ObjectId) -> Lookup {
        if self.max_bytes == 0 {
            return Lookup::Lead(None);
        }
        let mut flights = self.lock_flights();
        if let Some((file, size)) = self.get(&key) {
            return Lookup::Hit { file, size };
        }
        if let Some(flight) = flights.get(&key) {
            if let Some(follower) = flight.follow() {
                return Lookup::Follow(follower);
            }
        }
        let asked = self.seen.get(&key).unwrap_or(0).saturating_add(1);
        self.seen.insert(key, asked);
        let Ok(file) = tempfile::Builder::new()
            .prefix(".fill-")
            .tempfile_in(&self.dir)
        else {
            return Lookup::Lead(None);
        };
        let flight = Arc::new(Flight {
            state: Mutex::new(FlightState {
                path: file.path().to_path_buf(),
                published: 0,
                end: None,
                followers: 0,
            }),
            grew: Condvar::new(),
        });
        flights.insert(key, flight.clone());
        Lookup::Lead(Some(CacheFill {
            cache: self.clone(),
            key,
            flight,
            file: Some(file),
            buf: Vec::with_capacity(PUBLISH_BYTES),
            written: 0,
            keep: asked >= self.min_occurrences,
        }))
    }

    fn lock_flights(&self) -> MutexGuard<'_, HashMap<ObjectId, Arc<Flight>>> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Generations in flight now (for tests and diagnostics).
    pub fn in_flight(&self) -> usize {
        self.lock_flights().len()
    }

    fn insert(&self, key: ObjectId, path: PathBuf, size: u64) {
        self.metrics.responses_generated_bytes.inc_by(size);
        self.entries.insert(key, Arc::new(Entry { path, size }));
        // Evict now, so the disk bound holds once the pack is in.
        self.entries.run_pending_tasks();
    }

    /// Report what the cache holds and may hold to the metrics.
    pub fn report(&self) {
        let gauge = |g: &prometheus::IntGaugeVec, v: u64| {
            g.with_label_values(&[CACHE_NAME])
                .set(v.try_into().unwrap_or(i64::MAX))
        };
        gauge(&self.metrics.cache_bytes, self.size());
        gauge(&self.metrics.cache_capacity, self.max_bytes);
    }

    /// Bytes held now.
    pub fn size(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.iter().map(|(_, entry)| entry.size).sum()
    }
}

/// How a lookup answers.
pub enum Lookup {
    /// The pack an identical earlier request generated.
    Hit { file: std::fs::File, size: u64 },
    /// An identical request is generating the pack now: stream it from there.
    Follow(Follower),
    /// Generate the pack; the fill (if any) shares it and caches it.
    Lead(Option<CacheFill>),
}

/// A pack being generated, that identical requests follow.
pub struct Flight {
    state: Mutex<FlightState>,
    /// Signalled when more is published or the flight ends.
    grew: Condvar,
}

struct FlightState {
    /// The file the pack is written to (its name before it joins the cache).
    path: PathBuf,
    /// Bytes in the file that followers may read.
    published: u64,
    /// Set once: the pack is complete, or why the generation failed.
    end: Option<Result<(), String>>,
    followers: usize,
}

impl Flight {
    fn lock(&self) -> MutexGuard<'_, FlightState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Join as a follower (under the cache's flight lock, so the file is still
    /// at its temporary name and the leader has not given up).
    fn follow(self: &Arc<Self>) -> Option<Follower> {
        let mut state = self.lock();
        if state.end.is_some() {
            return None;
        }
        let file = std::fs::File::open(&state.path).ok()?;
        state.followers += 1;
        Some(Follower {
            flight: self.clone(),
            file,
            pos: 0,
        })
    }

    fn end(&self, outcome: Result<(), String>) {
        let mut state = self.lock();
        if state.end.is_none() {
            state.end = Some(outcome);
        }
        drop(state);
        self.grew.notify_all();
    }
}

/// What a follower waits for.
pub enum Awaited {
    /// Bytes to read.
    Data,
    /// The pack is complete and everything was read.
    End,
    /// The generation failed; `sent` says whether this follower had read anything.
    Failed { reason: String, sent: bool },
}

/// A request streaming the pack an identical request is generating.
pub struct Follower {
    flight: Arc<Flight>,
    file: std::fs::File,
    pos: u64,
}

impl Follower {
    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Wait until there is something to read, the pack is complete, or the
    /// generation failed; `tick` runs about every `every` while waiting (for
    /// keepalives).
    pub fn wait(&self, every: Duration, tick: &mut dyn FnMut()) -> Awaited {
        let mut state = self.flight.lock();
        loop {
            if state.published > self.pos {
                return Awaited::Data;
            }
            match &state.end {
                Some(Ok(())) => return Awaited::End,
                Some(Err(reason)) => {
                    return Awaited::Failed {
                        reason: reason.clone(),
                        sent: self.pos > 0,
                    }
                }
                None => {}
            }
            let (next, timeout) = self
                .flight
                .grew
                .wait_timeout(state, every)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            if timeout.timed_out() {
                drop(state);
                tick();
                state = self.flight.lock();
            }
        }
    }

    /// Read published bytes into `buf` (0 when nothing is published past what
    /// was read; call [`Follower::wait`] first).
    pub fn read_published(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let published = self.flight.lock().published;
        let room = usize::try_from(published - self.pos).unwrap_or(usize::MAX);
        let want = room.min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        self.file.seek(std::io::SeekFrom::Start(self.pos))?;
        self.file.read_exact(&mut buf[..want])?;
        self.pos += want as u64;
        Ok(want)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut state = self.flight.lock();
        state.followers = state.followers.saturating_sub(1);
    }
}

/// A pack being written into the cache alongside the response: the leader's
/// side of a [`Flight`]. Dropped without [`CacheFill::finish`], the generation
/// counts as failed and nothing is kept.
pub struct CacheFill {
    cache: Arc<ResponseCache>,
    key: ObjectId,
    flight: Arc<Flight>,
    /// None once copying stopped (disk error, or too big with nobody following).
    file: Option<tempfile::NamedTempFile>,
    buf: Vec<u8>,
    written: u64,
    /// The key was asked for often enough to be kept.
    keep: bool,
}

impl CacheFill {
    /// Keep a copy of `data`; a failing disk only disables the copy (and fails
    /// the followers). Past the cache's size nothing could be kept: the copy
    /// stops unless others follow it.
    pub fn copy(&mut self, data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        self.written += data.len() as u64;
        if self.written > self.cache.max_bytes && !self.followed() {
            self.stop("the pack is larger than the response cache");
            return;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PUBLISH_BYTES {
            self.publish();
        }
    }

    /// Others are following this generation.
    pub fn followed(&self) -> bool {
        self.flight.lock().followers > 0
    }

    /// Give the generation up if nobody follows it (the leader's own client went
    /// away): true when given up, false when it must go on for the followers.
    pub fn abandon_unless_followed(&mut self) -> bool {
        let mut flights = self.cache.lock_flights();
        if self.flight.lock().followers > 0 {
            return false;
        }
        flights.remove(&self.key);
        drop(flights);
        self.stop("the generation was abandoned");
        true
    }

    /// Write out what is buffered and let followers read it.
    fn publish(&mut self) {
        let Some(file) = &mut self.file else {
            return;
        };
        if let Err(err) = file.write_all(&self.buf) {
            self.stop(&format!("cannot write the shared pack: {err}"));
            return;
        }
        self.buf.clear();
        self.flight.lock().published = self.written;
        self.flight.grew.notify_all();
    }

    fn stop(&mut self, reason: &str) {
        self.file = None;
        self.buf = Vec::new();
        {
            let mut flights = self.cache.lock_flights();
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        self.flight.end(Err(reason.to_string()));
    }

    /// The pack is complete: followers read the rest, and it becomes the entry
    /// when `cache` and the key was asked for often enough (or was followed) and
    /// it fits.
    pub fn finish(mut self, cache: bool) {
        self.publish();
        let Some(file) = self.file.take() else {
            return;
        };
        let mut flights = self.cache.lock_flights();
        let keep = cache
            && (self.keep || self.flight.lock().followers > 0)
            && self.written <= self.cache.max_bytes;
        if keep {
            // Under the flight lock: a lookup finds either the flight (the file
            // still at its temporary name, opened before the rename) or the entry.
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let path = self.cache.dir.join(format!("{}-{nonce}.pack", self.key));
            if file.persist(&path).is_ok() {
                self.cache.insert(self.key, path, self.written);
            }
        }
        flights.remove(&self.key);
        drop(flights);
        self.flight.end(Ok(()));
    }
}

impl Drop for CacheFill {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.stop("the generation failed");
        }
    }
}

/// Whether a path is inside the cache directory (for tests and diagnostics).
pub fn is_cache_file(dir: &Path, path: &Path) -> bool {
    path.starts_with(dir) && path.extension().is_some_and(|e| e == "pack")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn lead(cache: &Arc<ResponseCache>, k: ObjectId) -> CacheFill {
        match cache.lookup(k) {
            Lookup::Lead(Some(fill)) => fill,
            Lookup::Lead(None) => panic!("no fill"),
            Lookup::Hit { .. } => panic!("a hit"),
            Lookup::Follow(_) => panic!("a flight"),
        }
    }

    fn put(cache: &Arc<ResponseCache>, k: ObjectId, bytes: usize) {
        let mut fill = lead(cache, k);
        fill.copy(&vec![1u8; bytes]);
        fill.finish(true);
    }

    #[test]
    fn entries_round_trip_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open(dir.path().join("c"), 3000, &Default::default()).unwrap();
        put(&cache, key(1), 1000);
        put(&cache, key(2), 1000);
        put(&cache, key(3), 1000);
        assert!(cache.get(&key(1)).is_some(), "1 is now the most recent");
        put(&cache, key(4), 1000);
        assert!(cache.size() <= 3000, "the bound holds");
        assert!(cache.get(&key(2)).is_none(), "the least recently used went");
        let (_, size) = cache.get(&key(1)).unwrap();
        assert_eq!(size, 1000);
        assert!(cache.get(&key(3)).is_some() && cache.get(&key(4)).is_some());

        // An unfinished fill leaves nothing behind.
        let mut fill = lead(&cache, key(9));
        fill.copy(b"partial");
        drop(fill);
        assert!(cache.get(&key(9)).is_none());

        // A restart takes up what is there.
        drop(cache);
        let again = ResponseCache::open(dir.path().join("c"), 3000, &Default::default()).unwrap();
        assert_eq!(again.size(), 3000);
        assert!(again.get(&key(4)).is_some());
        let stray: Vec<_> = std::fs::read_dir(dir.path().join("c"))
            .unwrap()
            .flatten()
            .filter(|e| !is_cache_file(&dir.path().join("c"), &e.path()))
            .collect();
        assert!(stray.is_empty(), "no half-written files remain");
    }

    fn follow(cache: &Arc<ResponseCache>, k: ObjectId) -> Follower {
        match cache.lookup(k) {
            Lookup::Follow(follower) => follower,
            _ => panic!("expected to follow a generation in flight"),
        }
    }

    /// Everything a follower reads until the flight ends.
    fn read_all(follower: &mut Follower) -> Result<Vec<u8>, (String, bool)> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match follower.wait(Duration::from_millis(10), &mut || {}) {
                Awaited::End => return Ok(got),
                Awaited::Failed { reason, sent } => return Err((reason, sent)),
                Awaited::Data => loop {
                    let n = follower.read_published(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                },
            }
        }
    }

    fn open(dir: &Path, max: u64, min_occurrences: u32) -> Arc<ResponseCache> {
        ResponseCache::open_with(dir.join("c"), max, min_occurrences, &Default::default()).unwrap()
    }

    #[test]
    fn identical_requests_follow_the_generation_in_flight_and_read_all_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 64 << 20, 1);
        let mut fill = lead(&cache, key(1));
        let followers: Vec<_> = (0..3).map(|_| follow(&cache, key(1))).collect();
        let readers: Vec<_> = followers
            .into_iter()
            .map(|mut f| std::thread::spawn(move || read_all(&mut f)))
            .collect();
        let mut expected = Vec::new();
        for i in 0..40u32 {
            let piece = vec![(i % 251) as u8; 50_000];
            fill.copy(&piece);
            expected.extend_from_slice(&piece);
            std::thread::sleep(Duration::from_millis(2));
        }
        fill.finish(true);
        for reader in readers {
            assert_eq!(reader.join().unwrap().unwrap(), expected);
        }
        assert_eq!(cache.in_flight(), 0);
        let (_, size) = cache.get(&key(1)).expect("the pack became the entry");
        assert_eq!(size, expected.len() as u64);
        assert!(matches!(cache.lookup(key(1)), Lookup::Hit { .. }));
    }

    #[test]
    fn a_failed_generation_fails_its_followers_only_as_far_as_they_got_and_the_next_request_leads()
    {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 64 << 20, 1);
        // Fails before anything was published: the follower may look again.
        let fill = lead(&cache, key(2));
        let mut early = follow(&cache, key(2));
        drop(fill);
        assert!(matches!(read_all(&mut early), Err((_, false))));
        // ... and leads the next generation, which nobody else shares.
        let mut fill = lead(&cache, key(2));
        let mut late = follow(&cache, key(2));
        fill.copy(&vec![7u8; PUBLISH_BYTES + 1]);
        let mut buf = vec![0u8; PUBLISH_BYTES];
        assert!(matches!(
            late.wait(Duration::from_millis(10), &mut || {}),
            Awaited::Data
        ));
        assert_eq!(late.read_published(&mut buf).unwrap(), PUBLISH_BYTES);
        drop(fill);
        assert!(matches!(read_all(&mut late), Err((_, true))), "it had data");
        assert!(cache.get(&key(2)).is_none(), "nothing of a failure is kept");
        assert_eq!(cache.in_flight(), 0);
        assert!(matches!(cache.lookup(key(2)), Lookup::Lead(Some(_))));
    }

    #[test]
    fn a_generation_is_abandoned_only_when_nobody_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 64 << 20, 1);
        let mut fill = lead(&cache, key(3));
        let follower = follow(&cache, key(3));
        assert!(!fill.abandon_unless_followed(), "someone follows");
        drop(follower);
        assert!(fill.abandon_unless_followed(), "nobody does any more");
        assert_eq!(cache.in_flight(), 0);
        assert!(matches!(cache.lookup(key(3)), Lookup::Lead(Some(_))));
    }

    #[test]
    fn a_pack_larger_than_the_cache_still_reaches_its_followers_but_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1000, 1);
        let mut fill = lead(&cache, key(4));
        let mut follower = follow(&cache, key(4));
        fill.copy(&[1u8; 800]);
        fill.copy(&[2u8; 800]);
        fill.finish(true);
        let got = read_all(&mut follower).unwrap();
        assert_eq!(got.len(), 1600);
        assert!(cache.get(&key(4)).is_none());
        assert_eq!(cache.size(), 0);
        // Without followers, copying stops at the bound and nothing is kept.
        let mut fill = lead(&cache, key(5));
        fill.copy(&[1u8; 1200]);
        fill.finish(true);
        assert!(cache.get(&key(5)).is_none());
    }

    #[test]
    fn with_min_occurrences_a_pack_is_kept_from_its_second_request_or_when_shared() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 64 << 20, 2);
        put(&cache, key(6), 100);
        assert!(cache.get(&key(6)).is_none(), "asked once: not kept");
        put(&cache, key(6), 100);
        assert!(cache.get(&key(6)).is_some(), "asked twice: kept");
        // Followed the first time: shared, so kept.
        let mut fill = lead(&cache, key(7));
        let mut follower = follow(&cache, key(7));
        fill.copy(&[3u8; 10]);
        fill.finish(true);
        assert_eq!(read_all(&mut follower).unwrap(), [3u8; 10]);
        assert!(cache.get(&key(7)).is_some());
    }

    #[test]
    fn keys_differ_in_everything_that_shapes_the_pack() {
        let wants = [key(1), key(2)];
        let base = CacheKey {
            repo_id: "r",
            wants: &wants,
            depth: None,
            filter: None,
            include_tags: &[],
            ofs_delta: true,
        };
        let reversed = [key(2), key(1)];
        let same = CacheKey {
            wants: &reversed,
            ..base
        };
        assert_eq!(base.digest(), same.digest(), "want order does not matter");
        let variants = [
            CacheKey {
                repo_id: "s",
                ..base
            },
            CacheKey {
                wants: &wants[..1],
                ..base
            },
            CacheKey {
                depth: Some(1),
                ..base
            },
            CacheKey {
                filter: Some("blob:none"),
                ..base
            },
            CacheKey {
                include_tags: &wants[..1],
                ..base
            },
            CacheKey {
                ofs_delta: false,
                ..base
            },
        ];
        for v in &variants {
            assert_ne!(v.digest(), base.digest());
        }
    }
}
