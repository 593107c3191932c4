//! The contract of [`ObjectStorageBackend`] as executable checks. Every backend
//! runs [`run_all`]; it uses fresh repository ids, so it can share a bucket.
//! Failures panic with a message saying which promise broke (this is test support).

use std::{path::Path, sync::Arc};

use bytes::Bytes;
use gix_object::Kind;

use crate::{
    backend::{ObjectStorageBackend, PutOptions},
    error::StorageError,
    keys::{LfsOid, ObjectKey, RepoId},
    loose::{encode_loose, get_loose_object, loose_object_id, put_loose_object},
};

fn fresh_repo(tag: &str) -> RepoId {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    RepoId::new(format!("conf-{tag}-{nanos}-{n}")).expect("valid id")
}

fn blob_key(repo: &RepoId, content: &[u8]) -> ObjectKey {
    ObjectKey::loose(repo, &loose_object_id(Kind::Blob, content))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Run every check against `backend`; `scratch` is a local directory for files.
pub async fn run_all(backend: Arc<dyn ObjectStorageBackend>, scratch: &Path) {
    round_trips(&*backend).await;
    ranges(&*backend).await;
    files(&*backend, scratch).await;
    head_and_delete(&*backend).await;
    listing_and_prefixes(&*backend).await;
    loose_objects(&*backend).await;
    lfs_objects(&*backend).await;
}

async fn round_trips(b: &dyn ObjectStorageBackend) {
    let repo = fresh_repo("rt");
    for (i, len) in [0usize, 1, 1000, 3 * 1024 * 1024].into_iter().enumerate() {
        let data = pattern(len, i as u8);
        let key = blob_key(&repo, &data);
        b.put(&key, Bytes::from(data.clone()), &PutOptions::default())
            .await
            .expect("put");
        assert_eq!(
            b.get(&key).await.expect("get"),
            data,
            "get returns what put stored ({len} bytes)"
        );
    }
    let key = blob_key(&repo, b"overwrite");
    b.put(&key, Bytes::from_static(b"first"), &PutOptions::default())
        .await
        .expect("put");
    b.put(&key, Bytes::from_static(b"second"), &PutOptions::default())
        .await
        .expect("overwrite");
    assert_eq!(
        &b.get(&key).await.expect("get")[..],
        b"second",
        "put replaces the whole object"
    );
    let missing = blob_key(&repo, b"never stored");
    assert!(
        matches!(b.get(&missing).await, Err(StorageError::NotFound { .. })),
        "get of a missing key is NotFound"
    );
    b.delete_prefix(&repo.prefix()).await.expect("cleanup");
}

async fn ranges(b: &dyn ObjectStorageBackend) {
    let repo = fresh_repo("range");
    let data = pattern(10_000, 7);
    let key = ObjectKey::pack(&repo, &loose_object_id(Kind::Blob, &data));
    b.put(&key, Bytes::from(data.clone()), &PutOptions::pack())
        .await
        .expect("put");
    assert_eq!(
        b.get_range(&key, 100..200).await.expect("middle"),
        data[100..200],
        "middle range"
    );
    assert_eq!(
        b.get_range(&key, 9_000..10_000).await.expect("to end"),
        data[9_000..],
        "range to the end"
    );
    assert_eq!(
        b.get_range(&key, 9_990..20_000).await.expect("clamped"),
        data[9_990..],
        "range past the end is clamped"
    );
    assert!(
        b.get_range(&key, 10_000..10_010).await.is_err(),
        "range starting past the end is an error"
    );
    b.delete_prefix(&repo.prefix()).await.expect("cleanup");
}

async fn files(b: &dyn ObjectStorageBackend, scratch: &Path) {
    let repo = fresh_repo("file");
    let data = pattern(9 * 1024 * 1024 + 17, 3);
    let src = scratch.join(format!("{repo}-upload"));
    std::fs::write(&src, &data).expect("write scratch file");
    let key = ObjectKey::pack(&repo, &loose_object_id(Kind::Blob, &data));
    b.put_file(&key, &src, &PutOptions::pack())
        .await
        .expect("put_file");
    let dest = scratch.join(format!("{repo}-download"));
    // Told its length or not, and told a wrong one (a record out of step with
    // the store): the same bytes come down, over what was there before.
    let len = data.len() as u64;
    for told in [
        None,
        Some(len),
        Some(len - 1000),
        Some(len + 1),
        Some(3 * len),
    ] {
        let n = b.get_to_file(&key, &dest, told).await.expect("get_to_file");
        assert_eq!(n, len, "get_to_file reports the size ({told:?})");
        assert!(
            std::fs::read(&dest).expect("read download") == data,
            "get_to_file writes the same bytes ({told:?})"
        );
    }
    let meta = b.head(&key).await.expect("head");
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/x-git-packfile")
    );
    // A file given up to the store: stored the same way, whether renamed or copied.
    let owned = scratch.join(format!("{repo}-owned"));
    let other = pattern(1024 * 1024 + 5, 4);
    std::fs::write(&owned, &other).expect("write scratch file");
    let owned_key = ObjectKey::pack(&repo, &loose_object_id(Kind::Blob, &other));
    b.put_owned_file(&owned_key, &owned, &PutOptions::pack())
        .await
        .expect("put_owned_file");
    assert!(
        b.get(&owned_key).await.expect("get") == other,
        "put_owned_file stores the file's bytes"
    );
    // An object over one part that another object's download replaces.
    let n = b
        .get_to_file(&owned_key, &dest, Some(other.len() as u64))
        .await
        .expect("get_to_file");
    assert_eq!(n, other.len() as u64);
    assert!(std::fs::read(&dest).expect("read download") == other);
    assert_eq!(
        b.head(&owned_key)
            .await
            .expect("head")
            .content_type
            .as_deref(),
        Some("application/x-git-packfile")
    );
    let _ = std::fs::remove_file(owned);
    let _ = std::fs::remove_file(src);
    let _ = std::fs::remove_file(dest);
    b.delete_prefix(&repo.prefix()).await.expect("cleanup");
}

async fn head_and_delete(b: &dyn ObjectStorageBackend) {
    let repo = fresh_repo("head");
    let id = put_loose_object(b, &repo, Kind::Blob, b"metadata please")
        .await
        .expect("put loose");
    let key = ObjectKey::loose(&repo, &id);
    let meta = b.head(&key).await.expect("head");
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/x-git-loose-object")
    );
    assert_eq!(
        meta.metadata.get("git-type").map(String::as_str),
        Some("blob")
    );
    assert_eq!(
        meta.metadata.get("git-size").map(String::as_str),
        Some("15")
    );
    assert_eq!(meta.size, b.get(&key).await.expect("get").len() as u64);
    b.delete(&key).await.expect("delete");
    assert!(
        matches!(b.head(&key).await, Err(StorageError::NotFound { .. })),
        "deleted key is gone"
    );
    b.delete(&key).await.expect("deleting a missing key is Ok");
}

/// Git LFS content under its key: listed and copied with the prefix; the
/// SHA-256 a store reports for it, if any, is the content's; presigning is
/// offered for both directions or for neither.
async fn lfs_objects(b: &dyn ObjectStorageBackend) {
    let repo = fresh_repo("lfs");
    let oid = LfsOid::parse("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        .expect("the SHA-256 of \"hello\\n\"");
    let key = ObjectKey::lfs(&repo, &oid);
    assert!(
        matches!(
            b.stored_sha256(&key).await,
            Err(StorageError::NotFound { .. })
        ),
        "stored_sha256 of a missing key is NotFound"
    );
    b.put(&key, Bytes::from_static(b"hello\n"), &PutOptions::default())
        .await
        .expect("put");
    let reported = b.stored_sha256(&key).await.expect("stored_sha256");
    assert!(
        reported.is_none_or(|sha| sha == oid),
        "a reported SHA-256 is the content's: {reported:?}"
    );
    let listed: Vec<String> = b
        .list(&repo.prefix())
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, [key.as_str().to_string()]);
    let copy = fresh_repo("lfs-copy");
    b.copy_prefix(&repo.prefix(), &copy.prefix())
        .await
        .expect("copy");
    assert_eq!(
        b.get(&ObjectKey::lfs(&copy, &oid)).await.expect("copied"),
        &b"hello\n"[..]
    );
    let expiry = std::time::Duration::from_secs(60);
    let get = b.presign_get(&key, expiry).await.expect("presign_get");
    let put = b
        .presign_put(&key, &oid, 6, expiry)
        .await
        .expect("presign_put");
    assert_eq!(
        get.is_some(),
        put.is_some(),
        "presigning both ways or neither"
    );
    if let Some(put) = put {
        assert_eq!(put.method, "PUT");
        assert!(
            put.headers
                .iter()
                .any(|(_, v)| v == "WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="),
            "a presigned upload names the content's SHA-256: {:?}",
            put.headers
        );
    }
    b.delete_prefix(&repo.prefix()).await.expect("delete");
    b.delete_prefix(&copy.prefix()).await.expect("delete");
}

async fn listing_and_prefixes(b: &dyn ObjectStorageBackend) {
    let a = fresh_repo("list");
    let ab = RepoId::new(format!("{a}b")).expect("id");
    let mut keys = Vec::new();
    for i in 0..25u8 {
        let data = pattern(10 + i as usize, i);
        let key = blob_key(&a, &data);
        b.put(
            &key,
            Bytes::from(data),
            &PutOptions::loose(Kind::Blob, 10 + i as u64),
        )
        .await
        .expect("put");
        keys.push(key.as_str().to_string());
    }
    let other = blob_key(&ab, b"neighbour");
    b.put(
        &other,
        Bytes::from_static(b"neighbour"),
        &PutOptions::default(),
    )
    .await
    .expect("put");
    keys.sort();
    let metas = b.list(&a.prefix()).await.expect("list");
    // Stores keep whole seconds (S3) or better; allow for clocks a little apart.
    let window = std::time::Duration::from_secs(120);
    let now = std::time::SystemTime::now();
    for meta in &metas {
        let written = meta
            .last_modified
            .unwrap_or_else(|| panic!("list tells when {} was written", meta.key));
        assert!(
            written <= now + window && written + window >= now,
            "{} was written just now, not at {written:?}",
            meta.key
        );
    }
    let listed: Vec<String> = metas.into_iter().map(|m| m.key).collect();
    assert_eq!(
        listed, keys,
        "list returns every key under the prefix, sorted, and nothing else"
    );

    let fork = fresh_repo("fork");
    assert_eq!(
        b.copy_prefix(&a.prefix(), &fork.prefix())
            .await
            .expect("copy"),
        25
    );
    let copied = b.list(&fork.prefix()).await.expect("list copy");
    assert_eq!(copied.len(), 25, "copy_prefix copies every key");
    for meta in &copied {
        let suffix = &meta.key[fork.as_str().len()..];
        let src = ObjectKey::parse(&format!("{a}{suffix}")).expect("source key");
        let dst = ObjectKey::parse(&meta.key).expect("copied key");
        assert_eq!(
            b.get(&src).await.expect("src"),
            b.get(&dst).await.expect("dst"),
            "copied bytes are equal"
        );
        let (hs, hd) = (
            b.head(&src).await.expect("head"),
            b.head(&dst).await.expect("head"),
        );
        assert_eq!(
            (hs.content_type, hs.metadata),
            (hd.content_type, hd.metadata),
            "copy keeps type and metadata"
        );
    }

    assert_eq!(
        b.delete_prefix(&a.prefix()).await.expect("delete prefix"),
        25
    );
    assert!(
        b.list(&a.prefix()).await.expect("list").is_empty(),
        "nothing remains after delete_prefix"
    );
    assert_eq!(
        b.list(&fork.prefix()).await.expect("list").len(),
        25,
        "other prefixes are untouched"
    );
    assert!(
        b.get(&other).await.is_ok(),
        "a prefix that merely starts alike is untouched"
    );
    b.delete_prefix(&fork.prefix()).await.expect("cleanup");
    b.delete_prefix(&ab.prefix()).await.expect("cleanup");
}

async fn loose_objects(b: &dyn ObjectStorageBackend) {
    let repo = fresh_repo("loose");
    let id = put_loose_object(
        b,
        &repo,
        Kind::Commit,
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmsg\n",
    )
    .await
    .expect("put");
    let (kind, data) = get_loose_object(b, &repo, &id).await.expect("get verified");
    assert_eq!(kind, Kind::Commit);
    assert_eq!(loose_object_id(kind, &data), id);

    // Another object's valid bytes under this key: the hash check catches it.
    let key = ObjectKey::loose(&repo, &id);
    b.put(
        &key,
        Bytes::from(encode_loose(Kind::Blob, b"impostor")),
        &PutOptions::default(),
    )
    .await
    .expect("overwrite");
    assert!(matches!(
        get_loose_object(b, &repo, &id).await,
        Err(StorageError::Corrupted { .. })
    ));
    b.put(&key, Bytes::from_static(b"garbage"), &PutOptions::default())
        .await
        .expect("overwrite");
    assert!(matches!(
        get_loose_object(b, &repo, &id).await,
        Err(StorageError::Corrupted { .. })
    ));
    b.delete_prefix(&repo.prefix()).await.expect("cleanup");
}

/// Objects are content-addressed and checked on read, for one object: stored, it
/// reads back as the same bytes whose SHA-1 is its id; once byte
/// `flip_at(stored length)` of its stored form is XORed with `mask`, reading it
/// fails as `OBJECT_CORRUPTED` (or, where zlib ignores the changed bits, still
/// gives the exact content). The object is deleted afterwards. Returns what
/// broke, for property tests to report.
pub async fn round_trip_then_corrupt(
    b: &dyn ObjectStorageBackend,
    repo: &RepoId,
    kind: Kind,
    data: &[u8],
    flip_at: impl FnOnce(usize) -> usize,
    mask: u8,
) -> Result<(), String> {
    let id = put_loose_object(b, repo, kind, data)
        .await
        .map_err(|e| format!("put: {e}"))?;
    if id != loose_object_id(kind, data) {
        return Err(format!("stored under {id}, not its SHA-1"));
    }
    let (k, back) = get_loose_object(b, repo, &id)
        .await
        .map_err(|e| format!("get: {e}"))?;
    if (k, back.as_slice()) != (kind, data) {
        return Err("read back other content".into());
    }
    let key = ObjectKey::loose(repo, &id);
    let mut stored = b
        .get(&key)
        .await
        .map_err(|e| format!("raw get: {e}"))?
        .to_vec();
    let at = flip_at(stored.len());
    stored[at] ^= mask;
    b.put(&key, Bytes::from(stored), &PutOptions::default())
        .await
        .map_err(|e| format!("overwrite: {e}"))?;
    let outcome = match get_loose_object(b, repo, &id).await {
        Err(err @ StorageError::Corrupted { .. }) if err.code() == "OBJECT_CORRUPTED" => Ok(()),
        Err(other) => Err(format!("expected OBJECT_CORRUPTED, got {other}")),
        // zlib can ignore some trailer bits; then the content must still be exact.
        Ok((k2, d2)) if k2 == kind && d2 == data => Ok(()),
        Ok(_) => Err("a corrupted object was served with other content".into()),
    };
    b.delete(&key).await.map_err(|e| format!("delete: {e}"))?;
    outcome
}
