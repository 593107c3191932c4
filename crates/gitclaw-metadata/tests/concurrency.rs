//! Races: many tasks pushing the same ref from the same old value, creating
//! the same ref, creating the same repository. Exactly one must win each
//! race, and every loser must be told so (not fail with a lock error).

mod common;

use std::sync::Arc;

use common::{oid, unique};
use gitclaw_metadata::{Error, Metadata, PushCommit, RefResult, RefUpdate, REASON_STALE};

const TASKS: u8 = 32;

fn one_update(repo_id: &str, update: RefUpdate, actor: String) -> PushCommit {
    PushCommit {
        repo_id: repo_id.into(),
        updates: vec![update],
        atomic: false,
        pack: None,
        loose: Vec::new(),
        actor,
        details: serde_json::Value::Null,
        pack_closure: None,
        push_options: Vec::new(),
        ref_details: Default::default(),
    }
}

/// Runs `TASKS` pushes at once; returns the index of each winner.
async fn race(md: &Metadata, make: impl Fn(u8) -> PushCommit) -> Vec<u8> {
    let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(TASKS)));
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let md = md.clone();
        let push = make(i);
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            (i, md.commit_push(push).await)
        }));
    }
    let mut winners = Vec::new();
    for handle in handles {
        let (i, result) = handle.await.expect("task panicked");
        match result
            .expect("a losing push must be rejected, not fail")
            .as_slice()
        {
            [RefResult::Applied] => winners.push(i),
            [RefResult::Rejected(reason)] => assert_eq!(reason, REASON_STALE),
            other => panic!("unexpected results {other:?}"),
        }
    }
    winners
}

async fn races(md: Metadata) {
    let owner = unique("race");
    let repo = md.create_repo(&owner, "r", false, "t").await.unwrap();

    // Everyone creates refs/tags/contested (must not exist).
    let winners = race(&md, |i| {
        one_update(
            &repo.id,
            RefUpdate {
                name: "refs/tags/contested".into(),
                old: None,
                new: Some(oid(i + 1)),
            },
            format!("creator-{i}"),
        )
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let first = oid(winners[0] + 1);
    assert_eq!(
        md.get_ref(&repo.id, "refs/tags/contested").await.unwrap(),
        Some(first)
    );

    // Everyone moves it from the same old value.
    let winners = race(&md, |i| {
        one_update(
            &repo.id,
            RefUpdate {
                name: "refs/tags/contested".into(),
                old: Some(first),
                new: Some(oid(100 + i)),
            },
            format!("mover-{i}"),
        )
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let second = oid(100 + winners[0]);
    assert_eq!(
        md.get_ref(&repo.id, "refs/tags/contested").await.unwrap(),
        Some(second)
    );

    // Everyone deletes it from the same old value.
    let winners = race(&md, |i| {
        one_update(
            &repo.id,
            RefUpdate {
                name: "refs/tags/contested".into(),
                old: Some(second),
                new: None,
            },
            format!("deleter-{i}"),
        )
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        md.get_ref(&repo.id, "refs/tags/contested").await.unwrap(),
        None
    );

    // Exactly one audit event per winning push, by the winner.
    let events = md.list_audit(Some(&repo.id), None, 1000).await.unwrap();
    let pushes: Vec<_> = events.iter().filter(|e| e.action == "push").collect();
    assert_eq!(pushes.len(), 3);
    assert!(pushes[0].actor.starts_with("deleter-"));
    assert!(pushes[1].actor.starts_with("mover-"));
    assert!(pushes[2].actor.starts_with("creator-"));

    // Everyone creates the same repository.
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let md = md.clone();
        let owner = owner.clone();
        handles.push(tokio::spawn(async move {
            md.create_repo(&owner, "contested", false, &format!("c-{i}"))
                .await
        }));
    }
    let mut created = 0;
    for handle in handles {
        match handle.await.expect("task panicked") {
            Ok(_) => created += 1,
            Err(Error::AlreadyExists(_)) => {}
            Err(e) => panic!("create failed: {e}"),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn races_sqlite_file() {
    let (md, _dir) = common::sqlite().await;
    races(md).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn races_postgres() {
    races(common::postgres().await).await;
}

/// A PostgreSQL pool opens its warm connections by itself and keeps them:
/// requests after a quiet spell do not wait for one to be set up.
#[tokio::test]
async fn a_postgres_pool_keeps_its_warm_connections_open() {
    let md = common::postgres().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while md.pool_connections().0 < gitclaw_metadata::WARM_CONNECTIONS {
        assert!(
            std::time::Instant::now() < deadline,
            "{} connections open, {} expected",
            md.pool_connections().0,
            gitclaw_metadata::WARM_CONNECTIONS
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(md.pool_connections().0, gitclaw_metadata::WARM_CONNECTIONS);
}
