//! The S3 backend against a real S3 server (Garage, started by the harness):
//! the shared conformance suite, stored objects reading back as the bytes that
//! hash to their id, start-up checks, and the resilience policy (retryable
//! failures retried up to the limit, then a clear error) with faults injected
//! by a proxy in between.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{proxy::*, *};
use gitclaw_storage::{
    conformance, loose_object_id, put_loose_object, ObjectKey, ObjectStorageBackend, PutOptions,
    RepoId, S3Backend, S3Settings, StorageError,
};
use gix_object::Kind;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A backend on the test S3 server with its own fresh bucket.
async fn backend(adjust: impl FnOnce(&mut S3Settings)) -> S3Backend {
    let mut settings = s3_settings();
    adjust(&mut settings);
    let backend = S3Backend::new(settings).await.expect("client");
    backend.verify().await.expect("bucket ready");
    backend
}

#[test]
fn s3_backend_passes_the_conformance_suite() {
    runtime().block_on(async {
        let scratch = tempfile::tempdir().unwrap();
        let store = Arc::new(backend(|_| {}).await);
        conformance::run_all(store.clone(), scratch.path()).await;
        // The stored object is Git's loose format under its `{repo}/objects/xx/…` key, with its metadata.
        let repo = RepoId::new("layout").unwrap();
        let id = put_loose_object(&*store, &repo, Kind::Blob, b"hello\n")
            .await
            .unwrap();
        assert_eq!(id.to_string(), "ce013625030ba8dba906f756967f9e9ca394464a");
        let listed: Vec<String> = store
            .list(&repo.prefix())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(
            listed,
            ["layout/objects/ce/013625030ba8dba906f756967f9e9ca394464a"]
        );
    });
}

#[test]
fn a_missing_bucket_is_named_and_created_only_when_allowed() {
    runtime().block_on(async {
        let name = fresh_bucket();
        let mut settings = s3_settings();
        settings.bucket = name.clone();
        settings.auto_create_bucket = false;
        let store = S3Backend::new(settings.clone()).await.unwrap();
        let err = store.verify().await.unwrap_err();
        assert!(
            matches!(err, StorageError::BucketNotFound(_)),
            "missing bucket: {err}"
        );
        assert!(
            err.to_string().contains(&name) && err.to_string().contains("S3_AUTO_CREATE_BUCKET")
        );
        settings.auto_create_bucket = true;
        S3Backend::new(settings.clone())
            .await
            .unwrap()
            .verify()
            .await
            .expect("created");
        settings.auto_create_bucket = false;
        S3Backend::new(settings)
            .await
            .unwrap()
            .verify()
            .await
            .expect("now it exists");
    });
}

#[test]
fn wrong_credentials_are_access_denied() {
    runtime().block_on(async {
        let mut settings = s3_settings();
        settings.bucket = s3_env().bucket.clone();
        settings.credentials = Some(("GK000000000000000000000000".into(), "0".repeat(64)));
        settings.max_retries = 0;
        let err = S3Backend::new(settings)
            .await
            .unwrap()
            .verify()
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::AccessDenied(_)),
            "unknown key: {err}"
        );
    });
}

/// Shared across proptest cases: one bucket, one client.
fn shared() -> &'static (tokio::runtime::Runtime, S3Backend) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, S3Backend)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = runtime();
        let store = rt.block_on(backend(|_| {}));
        (rt, store)
    })
}

fn kinds() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Blob),
        Just(Kind::Commit),
        Just(Kind::Tree),
        Just(Kind::Tag)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// On S3, a stored object reads back as the same bytes whose
    /// SHA-1 is its id; once its stored bytes change, reads fail with OBJECT_CORRUPTED.
    #[test]
    fn s3_objects_round_trip_and_corruption_is_caught(
        kind in kinds(),
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let (rt, store) = shared();
        let repo = RepoId::new("prop2").unwrap();
        let result = rt.block_on(conformance::round_trip_then_corrupt(
            store, &repo, kind, &data, |len| flip.index(len), mask,
        ));
        prop_assert!(result.is_ok(), "{:?}", result);
    }
}

/// A backend whose calls go through a fault proxy.
fn proxied(
    rt: &tokio::runtime::Runtime,
    adjust: impl FnOnce(&mut S3Settings),
) -> (FaultProxy, S3Backend) {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let store = rt.block_on(backend(|s| {
        s.endpoint = Some(proxy.endpoint());
        s.read_timeout = Duration::from_millis(500);
        s.connect_timeout = Duration::from_millis(500);
        adjust(s);
    }));
    proxy.forget();
    (proxy, store)
}

fn sample_key(repo: &str) -> (ObjectKey, Vec<u8>) {
    let data = b"resilient bytes".to_vec();
    let repo = RepoId::new(repo).unwrap();
    (
        ObjectKey::loose(&repo, &loose_object_id(Kind::Blob, &data)),
        data,
    )
}

/// Gaps between consecutive requests for the key.
fn gaps(seen: &[Seen]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn retries_grow_then_give_up_and_transient_faults_are_ridden_out() {
    let rt = runtime();
    let (proxy, store) = proxied(&rt, |s| {
        s.max_retries = 3;
        s.retry_max_backoff = Duration::from_secs(5);
    });
    let (key, data) = sample_key("retry");
    rt.block_on(store.put(&key, Bytes::from(data.clone()), &PutOptions::default()))
        .unwrap();

    // Every GET fails: one try and three retries, with growing pauses, then a clear error.
    proxy.forget();
    proxy.inject(Fault::InternalError, &["GET"], 0, None);
    let err = rt.block_on(store.get(&key)).unwrap_err();
    assert!(matches!(err, StorageError::Connection(_)), "{err}");
    assert_eq!(err.code(), "S3_CONNECTION_ERROR");
    let seen = proxy.seen();
    assert_eq!(
        seen.len(),
        4,
        "one try and S3_MAX_RETRIES=3 retries: {seen:?}"
    );
    // The delays themselves (growth, cap, jitter) are the retry policy's unit
    // tests, with an injected sleeper and RNG; here only that the real backend
    // does pause, which a wall clock can show as a lower bound (a sleep never
    // ends early) without any scheduling slack.
    let gaps = gaps(&seen);
    assert!(
        gaps[0] >= Duration::from_millis(50),
        "a pause before the first retry: {gaps:?}"
    );
    assert!(
        gaps[2] >= Duration::from_millis(200),
        "the third pause is at least 2x the base: {gaps:?}"
    );

    // Faults that pass: 500s, SlowDown, a dropped connection, a delay past the
    // read timeout. Each is retried and the call succeeds with the right bytes.
    for fault in [
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Drop,
        Fault::Delay(Duration::from_millis(1500)),
    ] {
        proxy.clear();
        proxy.forget();
        proxy.inject(fault, &["GET"], 0, Some(2));
        let started = Instant::now();
        let got = rt.block_on(store.get(&key));
        assert_eq!(got.as_deref().ok(), Some(&data[..]), "{fault:?}: {got:?}");
        assert_eq!(proxy.seen().len(), 3, "{fault:?}: two faults, then success");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    // A store that keeps asking to slow down: the error says so.
    proxy.forget();
    proxy.inject(Fault::SlowDown, &["GET"], 0, None);
    let err = rt.block_on(store.get(&key)).unwrap_err();
    assert!(matches!(err, StorageError::RateLimited(_)), "{err}");
    proxy.clear();
    // Uploads are retried the same way.
    proxy.inject(Fault::Drop, &["PUT"], 0, Some(1));
    let (key2, _) = sample_key("retry-put");
    rt.block_on(store.put(&key2, Bytes::from_static(b"again"), &PutOptions::default()))
        .expect("a dropped upload is retried");
    assert_eq!(&rt.block_on(store.get(&key2)).unwrap()[..], b"again");
}

#[test]
fn a_multipart_upload_survives_a_failed_part() {
    let rt = runtime();
    let (proxy, store) = proxied(&rt, |_| {});
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("big.pack");
    // Past the threshold by a few parts.
    let size = gitclaw_storage::MULTIPART_THRESHOLD as u32 + (40 << 20);
    let data: Vec<u8> = (0..size / 4)
        .flat_map(|i| i.wrapping_mul(2654435761).to_le_bytes())
        .collect();
    std::fs::write(&path, &data).unwrap();
    let repo = RepoId::new("multipart").unwrap();
    let key = ObjectKey::pack(&repo, &loose_object_id(Kind::Blob, &data));
    // The second PUT is a part (the first carries no body: POST starts the upload).
    proxy.inject(Fault::InternalError, &["PUT"], 1, Some(1));
    rt.block_on(store.put_file(&key, &path, &PutOptions::pack()))
        .expect("upload with one retried part");
    let parts = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains("partNumber"))
        .count();
    assert!(
        parts >= 7,
        "104 MiB goes up in 16 MiB parts, one retried: {parts}"
    );
    let dest = scratch.path().join("back.pack");
    let len = data.len() as u64;
    let gets = |proxy: &FaultProxy| proxy.seen().iter().filter(|s| s.method == "GET").count();
    proxy.forget();
    // Downloaded afresh (told the length or not): the size and bytes are the object's.
    let download = |told: Option<u64>, what: &str| {
        let _ = std::fs::remove_file(&dest);
        assert_eq!(
            rt.block_on(store.get_to_file(&key, &dest, told)).unwrap(),
            len,
            "{what}"
        );
        assert!(std::fs::read(&dest).unwrap() == data, "{what}: the bytes");
    };
    download(None, "not told its length");
    assert_eq!(gets(&proxy), 1, "not told its length: one GET");
    // Told its length, it comes down in parts side by side.
    proxy.forget();
    download(Some(len), "in parts");
    let in_parts = gets(&proxy);
    assert!(in_parts >= 4, "104 MiB in parts: {in_parts} GETs");
    // A part cut off half-way is asked for again, and only that part.
    proxy.forget();
    proxy.inject(Fault::TruncatedBody, &["GET"], 2, Some(1));
    download(Some(len), "a part retried");
    assert_eq!(gets(&proxy), in_parts + 1, "one part asked for twice");
    proxy.clear();
    let meta = rt.block_on(store.head(&key)).unwrap();
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/x-git-packfile")
    );
    // Ranged reads of pack data.
    assert_eq!(
        rt.block_on(store.get_range(&key, 20_000_000..20_000_100))
            .unwrap(),
        data[20_000_000..20_000_100]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// A retryable failure is retried up to the limit: `failures` faults in a
    /// row succeed iff they fit in
    /// `max_retries` retries, and the store sees exactly the tries made.
    #[test]
    fn retryable_failures_are_retried_up_to_the_limit(failures in 0usize..5, max_retries in 0u32..4) {
        let rt = runtime();
        let (proxy, store) = proxied(&rt, |s| s.max_retries = max_retries);
        let (key, data) = sample_key("prop18");
        rt.block_on(store.put(&key, Bytes::from(data.clone()), &PutOptions::default())).unwrap();
        proxy.forget();
        if failures > 0 {
            proxy.inject(Fault::InternalError, &["GET"], 0, Some(failures));
        }
        let got = rt.block_on(store.get(&key));
        let tries = proxy.seen().len();
        if failures <= max_retries as usize {
            let got = got.ok();
            prop_assert_eq!(got.as_deref(), Some(&data[..]));
            prop_assert_eq!(tries, failures + 1);
        } else {
            prop_assert!(matches!(got, Err(StorageError::Connection(_))));
            prop_assert_eq!(tries, max_retries as usize + 1);
        }
    }
}
