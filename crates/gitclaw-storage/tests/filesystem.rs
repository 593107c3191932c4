//! The filesystem backend against the shared conformance suite, and the
//! round trip of any object: read back by its SHA-1, corruption caught.

use std::sync::Arc;

use gitclaw_storage::{conformance, put_loose_object, FilesystemBackend, RepoId};
use gix_object::Kind;
use proptest::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_backend_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let backend = Arc::new(FilesystemBackend::new(dir.path().join("store")).unwrap());
    conformance::run_all(backend.clone(), scratch.path()).await;
    // Keys are paths ending in the key.
    let repo = RepoId::new("r1").unwrap();
    let id = put_loose_object(&*backend, &repo, Kind::Blob, b"x")
        .await
        .unwrap();
    let hex = id.to_string();
    assert!(dir
        .path()
        .join("store/r1/objects")
        .join(&hex[..2])
        .join(&hex[2..])
        .is_file());
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
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A stored object reads back as the same bytes whose SHA-1 is its id; once
    /// its stored bytes change, reads fail with OBJECT_CORRUPTED.
    #[test]
    fn objects_round_trip_and_corruption_is_caught(
        kind in kinds(),
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let backend = FilesystemBackend::new(dir.path()).unwrap();
        let repo = RepoId::new("prop").unwrap();
        let result = rt.block_on(conformance::round_trip_then_corrupt(
            &backend, &repo, kind, &data, |len| flip.index(len), mask,
        ));
        prop_assert!(result.is_ok(), "{:?}", result);
    }
}
