//! Bundles offered to cloning clients (protocol v2 `bundle-uri`).
//!
//! A git client that asks (`transfer.bundleURI=true`) learns from the
//! `bundle-uri` command where to download a bundle of the repository before it
//! fetches: it unpacks the bundle, then fetches only what is newer than the
//! refs the bundle lists. The bundle is the repository's newest closure pack
//! (what compaction writes, or a push of a whole history: exactly the objects
//! some refs reach) behind a header naming those refs as they were when the
//! pack was recorded. No bundle is written: the header is a few lines made from
//! the recorded refs, and the pack is streamed from the store as it lies. A
//! bundle's bytes never change while its pack is stored, so its URL, named by
//! the pack, may be cached like the pack itself.
//!
//! A client that cannot download or read the bundle goes on with an ordinary
//! clone (git degrades gracefully by design), so an offer is never a risk to a
//! clone; a pack replaced by compaction answers 404 once it is gone.

use std::{ops::Range, path::PathBuf, sync::Arc};

use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt, TryStreamExt};
use gitclaw_metadata::{PackRecord, RefRecord, Repo};
use gitclaw_pack::ObjectId;
use gitclaw_protocol::pktline;
use gitclaw_storage::{ObjectKey, ObjectStorageBackend, RepoId};

use crate::{app::AppState, error::GitError};

/// The first line of a version-2 bundle (SHA-1, no capabilities).
const SIGNATURE: &str = "# v2 git bundle\n";

/// The bytes read from the store at a time, and how many such reads may be in
/// flight for one download: at most 2 MiB held per download.
const READ_BYTES: u64 = 1 << 20;
const READS_IN_FLIGHT: usize = 2;

/// One stored pack offered as a bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub pack: PackRecord,
    /// The header, made once from the refs (sorted by name) it lists.
    header: Bytes,
}

impl Bundle {
    pub fn new(pack: PackRecord, refs: &[RefRecord]) -> Bundle {
        Bundle {
            pack,
            header: header(refs).into(),
        }
    }

    /// The file name the bundle is served under:
    /// `/{owner}/{repo}/info/bundles/{file_name}`.
    pub fn file_name(&self) -> String {
        file_name(&self.pack.pack_hash)
    }

    /// The bundle's header.
    pub fn header(&self) -> &Bytes {
        &self.header
    }

    /// The whole bundle's length: header and pack.
    pub fn byte_len(&self) -> u64 {
        self.header.len() as u64 + self.pack.pack_bytes
    }
}

/// A bundle's header: signature, one line a ref, and the blank line before
/// the pack. No prerequisites: the pack is self-contained.
fn header(refs: &[RefRecord]) -> Vec<u8> {
    let mut out = SIGNATURE.as_bytes().to_vec();
    for r in refs {
        out.extend_from_slice(format!("{} {}\n", r.oid, r.name).as_bytes());
    }
    out.push(b'\n');
    out
}

/// The bundle file name of a pack.
pub fn file_name(pack: &ObjectId) -> String {
    format!("pack-{pack}.bundle")
}

/// The pack a bundle file name names, if it is one.
fn pack_of(file: &str) -> Option<ObjectId> {
    let hex = file.strip_prefix("pack-")?.strip_suffix(".bundle")?;
    if hex.len() != 40 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    ObjectId::from_hex(hex.as_bytes()).ok()
}

/// The bundle the repository offers now: its newest closure pack whose refs
/// were recorded, when it is at least `GITCLAW_BUNDLE_MIN_BYTES` (a smaller
/// one costs the client more in the extra download than it saves).
pub async fn offered(state: &AppState, repo: &Repo) -> Result<Option<Bundle>, GitError> {
    if !state.config.bundles.offer {
        return Ok(None);
    }
    let packs = crate::service::objects::pack_list(state, repo).await?;
    let mut closures: Vec<&PackRecord> = packs
        .iter()
        .filter(|p| p.closure_of.is_some() && p.pack_bytes >= state.config.bundles.min_bytes)
        .collect();
    closures.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    for pack in closures {
        let refs = state.meta.closure_refs(&repo.id, &pack.pack_hash).await?;
        if !refs.is_empty() {
            return Ok(Some(Bundle::new(pack.clone(), &refs)));
        }
    }
    Ok(None)
}

/// The bundle served as `file` (`pack-{hash}.bundle`) if the repository
/// offers it, or did so lately enough that a client may still be on its way
/// to download it (any closure pack of the repository with recorded refs,
/// whatever its size); [`GitError::NotFound`] otherwise.
pub async fn find(state: &AppState, repo: &Repo, file: &str) -> Result<Bundle, GitError> {
    let missing = || GitError::NotFound(format!("bundle {file}"));
    let Some(pack) = pack_of(file).filter(|_| state.config.bundles.offer) else {
        return Err(missing());
    };
    let packs = crate::service::objects::pack_list(state, repo).await?;
    let Some(record) = packs
        .iter()
        .find(|p| p.pack_hash == pack && p.closure_of.is_some())
    else {
        return Err(missing());
    };
    let refs = state.meta.closure_refs(&repo.id, &pack).await?;
    if refs.is_empty() {
        return Err(missing());
    }
    Ok(Bundle::new(record.clone(), &refs))
}

/// The answer to `command=bundle-uri`: the `bundle.*` keys of a bundle list
/// (git-config's `bundle.*`), one packet each, then a flush. The URI is
/// relative: git resolves it against the URL it cloned from, so it holds
/// whatever host, port, scheme and credentials the client used.
pub fn bundle_list(bundle: Option<&Bundle>) -> Result<Vec<u8>, GitError> {
    let mut out = Vec::new();
    if let Some(bundle) = bundle {
        let id = format!("pack-{}", bundle.pack.pack_hash);
        for line in [
            "bundle.version=1\n".to_string(),
            "bundle.mode=all\n".to_string(),
            format!("bundle.{id}.uri=info/bundles/{}\n", bundle.file_name()),
        ] {
            pktline::write_text(&mut out, &line)?;
        }
    }
    out.extend_from_slice(pktline::FLUSH);
    Ok(out)
}

/// The bundle's bytes: its header, then its pack as the store holds it, read
/// from a local file where the store has one and otherwise by ranged reads
/// of [`READ_BYTES`], [`READS_IN_FLIGHT`] at a time.
pub fn content(
    state: &AppState,
    repo: &Repo,
    bundle: &Bundle,
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, GitError> {
    let repo_id = RepoId::new(&repo.id)?;
    let key = ObjectKey::pack(&repo_id, &bundle.pack.pack_hash);
    let header = stream::once(std::future::ready(Ok(bundle.header().clone())));
    let pack = match state.store.local_path(&key) {
        Some(path) => local_pack(path).boxed(),
        None => ranged_pack(state.store.clone(), key, bundle.pack.pack_bytes).boxed(),
    };
    let sent = state.metrics.bundle_bytes.clone();
    Ok(header.chain(pack).inspect_ok(move |chunk| {
        sent.inc_by(chunk.len() as u64);
    }))
}

fn local_pack(path: PathBuf) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    stream::once(async move { tokio::fs::File::open(path).await })
        .map_ok(|file| tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
        .try_flatten()
}

fn ranged_pack(
    store: Arc<dyn ObjectStorageBackend>,
    key: ObjectKey,
    len: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    let ranges = (0..len.div_ceil(READ_BYTES)).map(move |n| {
        let start = n * READ_BYTES;
        start..(start + READ_BYTES).min(len)
    });
    stream::iter(ranges)
        .map(move |range: Range<u64>| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                let expected = range.end - range.start;
                let bytes = store
                    .get_range(&key, range)
                    .await
                    .map_err(std::io::Error::other)?;
                if bytes.len() as u64 != expected {
                    return Err(std::io::Error::other(format!(
                        "{key}: the store returned {} bytes of a {expected}-byte range",
                        bytes.len()
                    )));
                }
                Ok(bytes)
            }
        })
        .buffered(READS_IN_FLIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn bundle() -> Bundle {
        Bundle::new(
            PackRecord {
                pack_hash: oid(9),
                object_count: 3,
                pack_bytes: 100,
                index_bytes: 10,
                created_at: 1,
                closure_of: Some(oid(8)),
                graph_bytes: None,
            },
            &[
                RefRecord {
                    name: "refs/heads/main".into(),
                    oid: oid(1),
                },
                RefRecord {
                    name: "refs/tags/v1".into(),
                    oid: oid(2),
                },
            ],
        )
    }

    #[test]
    fn the_header_lists_the_refs_then_a_blank_line() {
        let b = bundle();
        let expected = format!(
            "# v2 git bundle\n{} refs/heads/main\n{} refs/tags/v1\n\n",
            oid(1),
            oid(2)
        );
        assert_eq!(String::from_utf8(b.header().to_vec()).unwrap(), expected);
        assert_eq!(b.byte_len(), expected.len() as u64 + 100);
    }

    #[test]
    fn file_names_round_trip_and_nothing_else_names_a_pack() {
        let name = file_name(&oid(0xab));
        assert_eq!(name, format!("pack-{}.bundle", "ab".repeat(20)));
        assert_eq!(pack_of(&name), Some(oid(0xab)));
        for bad in [
            "pack-.bundle",
            &format!("pack-{}.bundle", "AB".repeat(20)),
            &format!("pack-{}.pack", "ab".repeat(20)),
            &format!("pack-{}x.bundle", "ab".repeat(20)),
            &format!("../pack-{}.bundle", "ab".repeat(20)),
        ] {
            assert_eq!(pack_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_list_names_one_bundle_by_a_relative_uri() {
        let b = bundle();
        let list = bundle_list(Some(&b)).unwrap();
        let mut reader = pktline::PktReader::new(&list);
        let mut lines = Vec::new();
        while let Some(pkt) = reader.read().unwrap() {
            match pkt.data() {
                Some(data) => lines.push(String::from_utf8(data.to_vec()).unwrap()),
                None => break,
            }
        }
        let id = format!("pack-{}", oid(9));
        assert_eq!(
            lines,
            [
                "bundle.version=1\n".to_string(),
                "bundle.mode=all\n".to_string(),
                format!("bundle.{id}.uri=info/bundles/{id}.bundle\n"),
            ]
        );
        assert!(list.ends_with(pktline::FLUSH));
        assert_eq!(bundle_list(None).unwrap(), pktline::FLUSH);
    }
}
