//! Git LFS rows: objects recorded once, counted, copied by a fork and removed
//! with their repository; locks one per path (a race has exactly one winner),
//! listed by path, id and cursor, removed by id. Run on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;

use common::unique;
use gitclaw_metadata::{
    DeleteCandidate, Error, ForkRepo, LfsUsage, LockCreated, LockFilter, Metadata, Recorded,
};

fn oid(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

async fn lfs_story(md: Metadata) {
    let repo = md
        .create_repo(&unique("lfs"), "r", false, "t")
        .await
        .unwrap();
    let id = repo.id.as_str();

    // Objects: recorded once, looked up in bulk, counted.
    assert!(md.lfs_objects(id, &[oid(1)]).await.unwrap().is_empty());
    md.record_lfs_object(id, &oid(1), 10).await.unwrap();
    md.record_lfs_object(id, &oid(1), 10).await.unwrap();
    md.record_lfs_object(id, &oid(2), 5_000_000_000)
        .await
        .unwrap();
    let found = md.lfs_objects(id, &[oid(1), oid(2), oid(3)]).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&oid(2)], 5_000_000_000);
    assert_eq!(
        md.lfs_usage(id).await.unwrap(),
        LfsUsage {
            objects: 2,
            bytes: 5_000_000_010
        }
    );
    // Many oids at once (more than one statement's worth).
    let many: Vec<String> = (0..=255u8).map(oid).collect();
    assert_eq!(md.lfs_objects(id, &many).await.unwrap().len(), 2);
    assert!(matches!(
        md.record_lfs_object(id, "not-an-oid", 1).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        md.record_lfs_object("no-such-repo", &oid(1), 1).await,
        Err(Error::NotFound(_))
    ));

    // A store key of an unrecorded object may be deleted; of a recorded one, not.
    let granted = md
        .claim_delete(
            id,
            &unique("sweep"),
            &[
                DeleteCandidate {
                    key: format!("{id}/lfs/01/01/{}", oid(1)),
                    recorded: Recorded::Lfs(oid(1)),
                },
                DeleteCandidate {
                    key: format!("{id}/lfs/03/03/{}", oid(3)),
                    recorded: Recorded::Lfs(oid(3)),
                },
            ],
            600,
        )
        .await
        .unwrap();
    assert_eq!(granted, [format!("{id}/lfs/03/03/{}", oid(3))]);

    // Locks: one per path; the loser is shown the holder's lock.
    let LockCreated::Created(a) = md
        .create_lfs_lock(id, "a.bin", "token:1", "alice")
        .await
        .unwrap()
    else {
        panic!("a.bin was free");
    };
    let LockCreated::Exists(held) = md
        .create_lfs_lock(id, "a.bin", "token:2", "bob")
        .await
        .unwrap()
    else {
        panic!("a.bin was taken");
    };
    assert_eq!(held, a);
    let LockCreated::Created(b) = md
        .create_lfs_lock(id, "b.bin", "token:2", "bob")
        .await
        .unwrap()
    else {
        panic!("b.bin was free");
    };
    let all = md
        .list_lfs_locks(
            id,
            &LockFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let first = md
        .list_lfs_locks(
            id,
            &LockFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let rest = md
        .list_lfs_locks(
            id,
            &LockFilter {
                after: Some(&first[0].id),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), 2);
    assert_ne!(first[0].id, rest[0].id);
    let by_path = md
        .list_lfs_locks(
            id,
            &LockFilter {
                path: Some("b.bin"),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_path, std::slice::from_ref(&b));
    let by_id = md
        .list_lfs_locks(
            id,
            &LockFilter {
                id: Some(&a.id),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_id, std::slice::from_ref(&a));
    assert_eq!(
        md.delete_lfs_lock(id, &a.id).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(md.delete_lfs_lock(id, &a.id).await.unwrap(), None);

    // A fork takes the objects it is given (not the locks).
    let snapshot = md.snapshot(id).await.unwrap();
    assert_eq!(snapshot.lfs.len(), 2);
    let fork_id = Metadata::new_repo_id();
    md.fork_repo(ForkRepo {
        id: fork_id.clone(),
        source_id: id.to_string(),
        owner: unique("lfs-fork"),
        name: "f".into(),
        private: false,
        head_ref: snapshot.repo.head_ref.clone(),
        refs: snapshot.refs,
        packs: snapshot.packs,
        loose: snapshot.loose,
        lfs: snapshot.lfs.clone(),
        actor: "t".into(),
    })
    .await
    .unwrap();
    assert_eq!(md.list_lfs_objects(&fork_id).await.unwrap(), snapshot.lfs);
    let fork_locks = md
        .list_lfs_locks(
            &fork_id,
            &LockFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(fork_locks.is_empty());

    // Deleting the repository deletes its rows.
    md.delete_repo(id, "t").await.unwrap();
    assert!(md.list_lfs_objects(id).await.unwrap().is_empty());
    let locks = md
        .list_lfs_locks(
            id,
            &LockFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(locks.is_empty());
    assert!(matches!(
        md.create_lfs_lock(id, "c.bin", "token:1", "alice").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(md.list_lfs_objects(&fork_id).await.unwrap().len(), 2);
}

/// Eight clients lock the same path at once: exactly one gets it, and every
/// other one is shown that lock.
async fn lock_race(md: Metadata) {
    const TASKS: usize = 8;
    let repo = md
        .create_repo(&unique("lfs-race"), "r", false, "t")
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let (md, barrier, id) = (md.clone(), barrier.clone(), repo.id.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            md.create_lfs_lock(&id, "same.bin", &format!("token:{i}"), "x")
                .await
        }));
    }
    let mut created = Vec::new();
    let mut shown = Vec::new();
    for handle in handles {
        match handle
            .await
            .unwrap()
            .expect("a losing lock must be answered, not fail")
        {
            LockCreated::Created(lock) => created.push(lock),
            LockCreated::Exists(lock) => shown.push(lock),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(shown.iter().all(|lock| *lock == created[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lfs_sqlite() {
    let (md, _dir) = common::sqlite().await;
    lfs_story(md.clone()).await;
    lock_race(md).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lfs_postgres() {
    let md = common::postgres().await;
    lfs_story(md.clone()).await;
    lock_race(md).await;
}
