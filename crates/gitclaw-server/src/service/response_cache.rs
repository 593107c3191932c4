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
//! a partial pack.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
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

impl ResponseCache {
    /// A cache in `dir` (created), holding at most `max_bytes`; entries left by an
    /// earlier run are taken up, half-written ones removed.
    pub fn open(
        dir: PathBuf,
        max_bytes: u64,
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

    /// A writer that fills the entry for `key`; nothing is cached unless
    /// [`CacheFill::finish`] is called.
    pub fn fill(self: &Arc<Self>, key: ObjectId) -> Option<CacheFill> {
        if self.max_bytes == 0 {
            return None;
        }
        let file = tempfile::Builder::new()
            .prefix(".fill-")
            .tempfile_in(&self.dir)
            .ok()?;
        Some(CacheFill {
            cache: self.clone(),
            key,
            out: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
            written: 0,
        })
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

/// A pack being written into the cache alongside the response.
pub struct CacheFill {
    cache: Arc<ResponseCache>,
    key: ObjectId,
    out: Option<std::io::BufWriter<tempfile::NamedTempFile>>,
    written: u64,
}

impl CacheFill {
    /// Keep a copy of `data`; a failing disk only disables the copy.
    pub fn copy(&mut self, data: &[u8]) {
        let too_big = self.written + data.len() as u64 > self.cache.max_bytes;
        if let Some(out) = &mut self.out {
            if too_big || out.write_all(data).is_err() {
                self.out = None;
            } else {
                self.written += data.len() as u64;
            }
        }
    }

    /// The pack is complete: make it the entry.
    pub fn finish(mut self) {
        let Some(out) = self.out.take() else {
            return;
        };
        let Ok(file) = out.into_inner() else {
            return;
        };
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let path = self.cache.dir.join(format!("{}-{nonce}.pack", self.key));
        if file.persist(&path).is_ok() {
            self.cache.insert(self.key, path, self.written);
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

    fn put(cache: &Arc<ResponseCache>, k: ObjectId, bytes: usize) {
        let mut fill = cache.fill(k).unwrap();
        fill.copy(&vec![1u8; bytes]);
        fill.finish();
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
        let mut fill = cache.fill(key(9)).unwrap();
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
