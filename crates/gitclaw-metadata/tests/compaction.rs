//! Compaction bookkeeping: one transaction swaps packs and loose objects for the
//! merged pack; replaced keys wait out their grace period; a lost race changes nothing.

mod common;

use common::{oid, unique};
use gitclaw_metadata::{
    Compaction, CompactionApplied, Metadata, NewLoose, NewPack, PackClosure, PushCommit, RefRecord,
    RefUpdate,
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

async fn compaction_story(md: Metadata) {
    let repo = md.create_repo(&unique("o"), "r", false, "t").await.unwrap();
    // Two pushes: one pack, then two loose objects.
    for (i, (p, loose)) in [(Some(pack(1)), vec![]), (None, vec![oid(11), oid(12)])]
        .into_iter()
        .enumerate()
    {
        let results = md
            .commit_push(PushCommit {
                repo_id: repo.id.clone(),
                updates: vec![RefUpdate {
                    name: format!("refs/heads/b{i}"),
                    old: None,
                    new: Some(oid(50 + i as u8)),
                }],
                atomic: false,
                pack: p,
                loose: loose
                    .into_iter()
                    .map(|o| NewLoose {
                        oid: o,
                        kind: "blob".into(),
                        size: 3,
                    })
                    .collect(),
                actor: "t".into(),
                details: serde_json::Value::Null,
                pack_closure: None,
                push_options: Vec::new(),
                ref_details: Default::default(),
            })
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.is_applied()));
    }
    // What a compaction works from: the same rows the separate lists hold.
    let snapshot = md.object_snapshot(&repo.id).await.unwrap();
    assert_eq!(snapshot.refs, md.list_refs(&repo.id).await.unwrap());
    assert_eq!(snapshot.packs, md.list_packs(&repo.id).await.unwrap());
    assert_eq!(snapshot.loose, md.list_loose(&repo.id).await.unwrap());
    assert_eq!(
        (
            snapshot.refs.len(),
            snapshot.packs.len(),
            snapshot.loose.len()
        ),
        (2, 1, 2)
    );
    let compaction = Compaction {
        repo_id: repo.id.clone(),
        removed_packs: vec![oid(1)],
        removed_loose: vec![oid(11), oid(12)],
        new_pack: pack(9),
        closure: Some(PackClosure {
            key: oid(90),
            tips: vec![oid(50), oid(51), oid(50)],
            refs: vec![named("refs/heads/main", 50), named("refs/tags/v1", 51)],
        }),
        cruft_pack: Some(pack(8)),
        replaced_keys: vec![
            format!("{}/pack/pack-a.pack", repo.id),
            format!("{}/objects/0b/x", repo.id),
        ],
        delete_after: 1_000,
    };
    assert_eq!(
        md.apply_compaction(&compaction).await.unwrap(),
        CompactionApplied::Applied
    );
    let mut packs: Vec<_> = md
        .list_packs(&repo.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.pack_hash, p.closure_of))
        .collect();
    packs.sort();
    assert_eq!(
        packs,
        vec![(oid(8), None), (oid(9), Some(oid(90)))],
        "the merged pack with what it is the closure of, and the cruft pack"
    );
    assert_eq!(
        md.closure_tips(&repo.id, &oid(9)).await.unwrap(),
        vec![oid(50), oid(51)]
    );
    assert_eq!(
        md.closure_refs(&repo.id, &oid(9)).await.unwrap(),
        vec![named("refs/heads/main", 50), named("refs/tags/v1", 51)],
        "the refs by name, for the pack's bundle"
    );
    assert!(md.closure_tips(&repo.id, &oid(8)).await.unwrap().is_empty());
    assert!(md.closure_refs(&repo.id, &oid(8)).await.unwrap().is_empty());
    // A closure learnt later is recorded on the pack, with its tips and refs
    // (more than one insert's worth of each).
    let many: Vec<_> = (0..=255u8).chain(0..=255).map(oid).collect();
    let refs: Vec<_> = (0..=255u8)
        .map(|n| named(&format!("refs/heads/b{n:03}"), n))
        .collect();
    let closure = PackClosure {
        key: oid(80),
        tips: many,
        refs: refs.clone(),
    };
    md.record_closure(&repo.id, &oid(8), &closure, None)
        .await
        .unwrap();
    assert_eq!(md.closure_tips(&repo.id, &oid(8)).await.unwrap().len(), 256);
    assert_eq!(md.closure_refs(&repo.id, &oid(8)).await.unwrap(), refs);
    let cruft = md.list_packs(&repo.id).await.unwrap();
    assert!(cruft
        .iter()
        .any(|p| p.pack_hash == oid(8) && p.closure_of == Some(oid(80))));
    assert!(md.list_loose(&repo.id).await.unwrap().is_empty());
    assert_eq!(
        md.list_refs(&repo.id).await.unwrap().len(),
        2,
        "refs are untouched"
    );

    // A second compaction of the same sources lost the race: nothing changes.
    let again = Compaction {
        new_pack: pack(10),
        ..compaction.clone()
    };
    assert!(matches!(
        md.apply_compaction(&again).await,
        Ok(CompactionApplied::Superseded(_))
    ));
    let packs: Vec<_> = md
        .list_packs(&repo.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.pack_hash)
        .collect();
    assert_eq!(packs.len(), 2);
    assert!(!packs.contains(&oid(10)));

    // Grace period.
    let mine = |due: Vec<gitclaw_metadata::DueDeletion>| {
        due.into_iter().filter(|d| d.repo_id == repo.id).count()
    };
    assert_eq!(
        mine(md.due_deletions(999, 100).await.unwrap()),
        0,
        "not before the grace period ends"
    );
    let due: Vec<_> = md
        .due_deletions(1_000, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.repo_id == repo.id)
        .collect();
    assert_eq!(due.len(), 2);
    for d in &due {
        md.finish_deletion(&d.repo_id, &d.key).await.unwrap();
    }
    assert_eq!(mine(md.due_deletions(i64::MAX, 100).await.unwrap()), 0);
}

#[tokio::test]
async fn compaction_sqlite() {
    let (md, _dir) = common::sqlite().await;
    compaction_story(md).await;
}

#[tokio::test]
async fn compaction_postgres() {
    compaction_story(common::postgres().await).await;
}

fn named(name: &str, n: u8) -> RefRecord {
    RefRecord {
        name: name.to_string(),
        oid: oid(n),
    }
}
