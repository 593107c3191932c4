//! Every change to what a repository's refs, packs or loose objects are bumps its
//! `cache_version` in the same transaction; a request that changes nothing does
//! not. A shared cache keyed by it can then never answer a reader who sees the
//! new row with data from before the change.

mod common;

use common::{oid, unique};
use gitclaw_metadata::{
    Compaction, Metadata, NewLoose, NewPack, PackClosure, PushCommit, RefUpdate,
};

fn pack(n: u8) -> NewPack {
    NewPack {
        pack_hash: oid(n),
        object_count: 20,
        pack_bytes: 1000,
        index_bytes: 100,
        graph_bytes: None,
    }
}

fn push(repo_id: &str, updates: Vec<RefUpdate>, pack: Option<NewPack>, loose: &[u8]) -> PushCommit {
    PushCommit {
        repo_id: repo_id.to_string(),
        updates,
        atomic: false,
        pack,
        loose: loose
            .iter()
            .map(|n| NewLoose {
                oid: oid(*n),
                kind: "blob".into(),
                size: 3,
            })
            .collect(),
        actor: "t".into(),
        details: serde_json::Value::Null,
        pack_closure: None,
        push_options: Vec::new(),
        ref_details: Default::default(),
    }
}

fn set(name: &str, old: Option<u8>, new: Option<u8>) -> RefUpdate {
    RefUpdate {
        name: name.to_string(),
        old: old.map(oid),
        new: new.map(oid),
    }
}

async fn version(md: &Metadata, owner: &str) -> i64 {
    md.get_repo(owner, "r")
        .await
        .unwrap()
        .expect("the repository exists")
        .cache_version
}

async fn cache_version_story(md: Metadata) {
    let owner = unique("cv");
    let repo = md.create_repo(&owner, "r", false, "t").await.unwrap();
    let last = std::cell::Cell::new(version(&md, &owner).await);
    let bumped = |now: i64, what: &str| {
        assert!(
            now > last.get(),
            "{what} bumps the version ({} -> {now})",
            last.get()
        );
        last.set(now);
    };

    let r = md
        .commit_push(push(
            &repo.id,
            vec![set("refs/tags/a", None, Some(50))],
            Some(pack(1)),
            &[],
        ))
        .await
        .unwrap();
    assert!(r.iter().all(|r| r.is_applied()));
    bumped(version(&md, &owner).await, "a push of a pack and a new ref");

    md.commit_push(push(
        &repo.id,
        vec![set("refs/tags/a", Some(50), Some(51))],
        None,
        &[11, 12],
    ))
    .await
    .unwrap();
    bumped(
        version(&md, &owner).await,
        "a push of loose objects moving a ref",
    );

    md.commit_push(push(
        &repo.id,
        vec![set("refs/tags/a", Some(51), Some(52))],
        None,
        &[],
    ))
    .await
    .unwrap();
    bumped(version(&md, &owner).await, "a push moving a ref alone");

    // A stale update changes nothing, and says so.
    let before = last.get();
    let r = md
        .commit_push(push(
            &repo.id,
            vec![set("refs/tags/a", Some(50), Some(53))],
            None,
            &[],
        ))
        .await
        .unwrap();
    assert!(!r[0].is_applied());
    assert_eq!(
        version(&md, &owner).await,
        before,
        "a rejected push changes nothing"
    );

    let closure = PackClosure {
        key: oid(90),
        tips: vec![oid(50)],
        refs: vec![],
    };
    md.record_closure(&repo.id, &oid(1), &closure, None)
        .await
        .unwrap();
    bumped(
        version(&md, &owner).await,
        "recording what a pack is the closure of",
    );

    md.apply_compaction(&Compaction {
        repo_id: repo.id.clone(),
        removed_packs: vec![oid(1)],
        removed_loose: vec![oid(11), oid(12)],
        new_pack: pack(9),
        closure: None,
        cruft_pack: None,
        replaced_keys: vec![],
        delete_after: 1_000,
    })
    .await
    .unwrap();
    bumped(version(&md, &owner).await, "a compaction");

    md.commit_push(push(
        &repo.id,
        vec![set("refs/tags/a", Some(52), None)],
        None,
        &[],
    ))
    .await
    .unwrap();
    bumped(version(&md, &owner).await, "deleting a ref");
}

#[tokio::test]
async fn cache_version_sqlite() {
    let (md, _dir) = common::sqlite().await;
    cache_version_story(md).await;
}

#[tokio::test]
async fn cache_version_postgres() {
    cache_version_story(common::postgres().await).await;
}
