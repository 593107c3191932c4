//! Leases on store keys: a key is granted for deletion only while nothing
//! records it and no other live claim names it, and an upload waits while a
//! deletion of its key is under way. Run on SQLite and PostgreSQL, as a story and
//! as a race.

mod common;

use std::sync::Arc;

use common::{oid, unique};
use gitclaw_metadata::{
    DeleteCandidate, Metadata, NewLoose, NewPack, PushCommit, Recorded, RefUpdate, UploadClaim,
};

const LEASE: u64 = 600;

fn nothing(key: &str) -> DeleteCandidate {
    DeleteCandidate {
        key: key.into(),
        recorded: Recorded::Nothing,
    }
}

async fn claims_story(md: Metadata) {
    let repo = md
        .create_repo(&unique("claims"), "r", false, "t")
        .await
        .unwrap();
    let id = repo.id.as_str();
    let keys = |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
    let (a, b, c) = (unique("a"), unique("b"), unique("c"));

    assert_eq!(
        md.claim_upload(id, &a, &keys(&["k1", "k2"]), LEASE)
            .await
            .unwrap(),
        UploadClaim::Taken
    );
    assert_eq!(
        md.live_claims(id).await.unwrap(),
        vec![
            ("k1".to_string(), "upload".to_string()),
            ("k2".to_string(), "upload".to_string())
        ]
    );
    assert!(
        md.claim_delete(id, &b, &[nothing("k1")], LEASE)
            .await
            .unwrap()
            .is_empty(),
        "a key a push is uploading is never granted for deletion"
    );

    // The push records k2 as a loose object, then lets go of both keys.
    let loose = oid(2);
    md.commit_push(PushCommit {
        repo_id: id.into(),
        updates: vec![RefUpdate {
            name: "refs/heads/main".into(),
            old: None,
            new: Some(loose),
        }],
        atomic: false,
        pack: Some(NewPack {
            pack_hash: oid(9),
            object_count: 11,
            pack_bytes: 100,
            index_bytes: 10,
            graph_bytes: None,
        }),
        loose: vec![NewLoose {
            oid: loose,
            kind: "commit".into(),
            size: 10,
        }],
        actor: "t".into(),
        details: serde_json::Value::Null,
        pack_closure: None,
        push_options: Vec::new(),
        ref_details: Default::default(),
    })
    .await
    .unwrap();
    md.release_claim(&a).await.unwrap();
    let granted = md
        .claim_delete(
            id,
            &b,
            &[
                nothing("k1"),
                DeleteCandidate {
                    key: "k2".into(),
                    recorded: Recorded::Loose(loose),
                },
                DeleteCandidate {
                    key: "pack".into(),
                    recorded: Recorded::Pack(oid(9)),
                },
                DeleteCandidate {
                    key: "other-pack".into(),
                    recorded: Recorded::Pack(oid(8)),
                },
            ],
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(
        granted,
        keys(&["k1", "other-pack"]),
        "recorded keys are never granted"
    );
    assert_eq!(
        md.claim_upload(id, &c, &keys(&["k1"]), LEASE)
            .await
            .unwrap(),
        UploadClaim::DeletionUnderWay,
        "an upload waits for a deletion of its key"
    );
    md.release_claim(&b).await.unwrap();
    assert_eq!(
        md.claim_upload(id, &c, &keys(&["k1"]), LEASE)
            .await
            .unwrap(),
        UploadClaim::Taken
    );
    md.release_claim(&c).await.unwrap();

    // A key a compaction scheduled for deletion belongs to that schedule, until a
    // push writes it again.
    md.schedule_deletion(id, "k3", 0).await.unwrap();
    assert!(md
        .claim_delete(id, &unique("d"), &[nothing("k3")], LEASE)
        .await
        .unwrap()
        .is_empty());
    let e = unique("e");
    assert_eq!(
        md.claim_upload(id, &e, &keys(&["k3"]), LEASE)
            .await
            .unwrap(),
        UploadClaim::Taken
    );
    assert!(
        md.due_deletions(i64::MAX, 100)
            .await
            .unwrap()
            .iter()
            .all(|d| d.key != "k3"),
        "a key written again is no longer scheduled for deletion"
    );
    // The claimer's own upload claim turns into a delete claim (a failed push).
    assert_eq!(
        md.claim_delete(id, &e, &[nothing("k3")], LEASE)
            .await
            .unwrap(),
        keys(&["k3"])
    );
    assert_eq!(
        md.live_claims(id).await.unwrap(),
        vec![("k3".to_string(), "delete".to_string())]
    );
    md.release_claim(&e).await.unwrap();

    // Leases lapse unless renewed.
    let (f, g) = (unique("f"), unique("g"));
    md.claim_upload(id, &f, &keys(&["k4"]), 0).await.unwrap();
    md.claim_upload(id, &g, &keys(&["k5"]), 0).await.unwrap();
    md.renew_claim(&g, LEASE).await.unwrap();
    // A lease of 0 s lapses when the clock passes the second it was taken in.
    common::wait::wait_until_async(
        std::time::Duration::from_secs(30),
        "the 0 s lease on k4 to lapse",
        || async {
            !md.live_claims(id)
                .await
                .unwrap()
                .iter()
                .any(|(k, _)| k == "k4")
        },
    )
    .await;
    assert_eq!(
        md.claim_delete(id, &unique("h"), &[nothing("k4"), nothing("k5")], LEASE)
            .await
            .unwrap(),
        keys(&["k4"]),
        "a lapsed lease no longer protects its key; a renewed one does"
    );

    assert_eq!(
        md.claim_upload("no-such-repo", &unique("x"), &keys(&["k"]), LEASE)
            .await
            .unwrap(),
        UploadClaim::NoRepository
    );

    // A push still uploading when its repository is deleted: its claim goes
    // with the repository, and what it wrote is anybody's to delete.
    let (p, q) = (unique("p"), unique("q"));
    assert_eq!(
        md.claim_upload(id, &p, &keys(&["late"]), LEASE)
            .await
            .unwrap(),
        UploadClaim::Taken
    );
    md.delete_repo(id, "t").await.unwrap();
    assert_eq!(
        md.claim_delete(id, &q, &[nothing("late"), nothing("other")], LEASE)
            .await
            .unwrap(),
        keys(&["late", "other"]),
        "every key of a deleted repository may be deleted"
    );
}

/// Uploaders and deleters of one key, all at once: never an upload and a
/// deletion both granted, never two deletions.
async fn claims_race(md: Metadata) {
    let repo = md
        .create_repo(&unique("claims-race"), "r", false, "t")
        .await
        .unwrap();
    for round in 0..5 {
        let key = format!("key-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut handles = Vec::new();
        for i in 0..16 {
            let (md, id, key, barrier) =
                (md.clone(), repo.id.clone(), key.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let claim = unique("racer");
                if i % 2 == 0 {
                    let taken = md.claim_upload(&id, &claim, &[key], LEASE).await.unwrap();
                    (taken == UploadClaim::Taken, false)
                } else {
                    let granted = md
                        .claim_delete(&id, &claim, &[nothing(&key)], LEASE)
                        .await
                        .unwrap();
                    (false, !granted.is_empty())
                }
            }));
        }
        let (mut uploads, mut deletes) = (0, 0);
        for handle in handles {
            let (u, d) = handle.await.expect("task panicked");
            uploads += usize::from(u);
            deletes += usize::from(d);
        }
        assert!(
            deletes <= 1 && (deletes == 0 || uploads == 0) && uploads + deletes > 0,
            "round {round}: {uploads} uploads and {deletes} deletions granted at once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_sqlite() {
    let (md, _dir) = common::sqlite().await;
    claims_story(md.clone()).await;
    claims_race(md).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_postgres() {
    let md = common::postgres().await;
    claims_story(md.clone()).await;
    claims_race(md).await;
}
