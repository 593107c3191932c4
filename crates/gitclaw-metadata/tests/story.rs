//! The metadata story, written once and run on every database: repositories
//! (names unique regardless of case), listings filtered by reader, tokens,
//! pushes (CAS, atomic, HEAD), stats, audit, fork and delete.
//! On SQLite and on the PostgreSQL that `GITCLAW_TEST_POSTGRES_URL` names.

mod common;

use common::{oid, unique};
use gitclaw_metadata::{
    Access, AuditEvent, Error, ForkRepo, Metadata, NamedScope, NewLoose, NewPack, ObjectId,
    PushCommit, Readers, RefRecord, RefResult, RefUpdate, REASON_ATOMIC_FAILED,
    REASON_CURRENT_BRANCH, REASON_STALE,
};
use serde_json::json;

fn create(name: &str, new: ObjectId) -> RefUpdate {
    RefUpdate {
        name: name.into(),
        old: None,
        new: Some(new),
    }
}

fn update(name: &str, old: ObjectId, new: ObjectId) -> RefUpdate {
    RefUpdate {
        name: name.into(),
        old: Some(old),
        new: Some(new),
    }
}

fn delete(name: &str, old: ObjectId) -> RefUpdate {
    RefUpdate {
        name: name.into(),
        old: Some(old),
        new: None,
    }
}

fn push(repo_id: &str, updates: Vec<RefUpdate>) -> PushCommit {
    PushCommit {
        repo_id: repo_id.into(),
        updates,
        atomic: false,
        pack: None,
        loose: Vec::new(),
        actor: "tester".into(),
        details: serde_json::Value::Null,
        pack_closure: None,
        push_options: Vec::new(),
        ref_details: Default::default(),
    }
}

fn stale() -> RefResult {
    RefResult::Rejected(REASON_STALE.into())
}

fn refs(list: &[(&str, ObjectId)]) -> Vec<RefRecord> {
    list.iter()
        .map(|(name, oid)| RefRecord {
            name: (*name).into(),
            oid: *oid,
        })
        .collect()
}

async fn audit(md: &Metadata, repo_id: &str) -> Vec<AuditEvent> {
    md.list_audit(Some(repo_id), None, 1000)
        .await
        .expect("list audit")
}

/// The names of `owner`'s repositories `readers` may see, paging `limit` at
/// a time from just before `owner` until a page ends the owner's listing.
async fn readable(md: &Metadata, owner: &str, readers: Readers<'_>, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = (owner.to_string(), String::new());
    loop {
        let page = md
            .list_readable_repos(readers, Some((&after.0, &after.1)), limit)
            .await
            .expect("list readable");
        assert!(page.len() <= limit as usize);
        seen.extend(
            page.iter()
                .filter(|r| r.owner == owner)
                .map(|r| r.name.clone()),
        );
        match page.last() {
            Some(last) if last.owner == owner && page.len() == limit as usize => {
                after = (last.owner.clone(), last.name.clone());
            }
            _ => return seen,
        }
    }
}

async fn story(md: Metadata) {
    let owner = unique("owner");
    let (a, b, c, d) = (oid(0xaa), oid(0xbb), oid(0xcc), oid(0xdd));

    // --- create, duplicate, case-sensitivity, lookups -------------------
    let repo = md
        .create_repo(&owner, "one", false, "alice")
        .await
        .expect("create");
    assert_eq!(repo.owner, owner);
    assert_eq!(repo.name, "one");
    assert_eq!(repo.head_ref, "refs/heads/main");
    assert_eq!(repo.state, "active");
    assert!(!repo.private);
    assert_eq!(repo.id.len(), 36, "uuid: {}", repo.id);
    assert!(matches!(
        md.create_repo(&owner, "one", true, "mallory").await,
        Err(Error::AlreadyExists(_))
    ));
    // Names are unique regardless of letter case; the stored spelling is
    // the one lookups in any case return.
    let owner_upper = owner.to_uppercase();
    for (o, n) in [
        (owner.as_str(), "ONE"),
        (owner_upper.as_str(), "one"),
        (owner_upper.as_str(), "One"),
    ] {
        assert!(
            matches!(
                md.create_repo(o, n, true, "mallory").await,
                Err(Error::AlreadyExists(_))
            ),
            "{o}/{n} differs from {owner}/one only in letter case"
        );
    }
    let upper = md
        .create_repo(&owner, "TWO", true, "alice")
        .await
        .expect("create TWO");
    assert!(upper.private);
    assert_ne!(upper.id, repo.id);
    assert_eq!(
        md.get_repo(&owner_upper, "two").await.unwrap(),
        Some(upper.clone()),
        "found in any case, shown as stored"
    );
    assert!(matches!(
        md.create_repo(&owner, "", false, "alice").await,
        Err(Error::InvalidInput(_))
    ));

    assert_eq!(
        md.get_repo(&owner, "one").await.unwrap(),
        Some(repo.clone())
    );
    assert_eq!(
        md.get_repo(&owner, "One").await.unwrap(),
        Some(repo.clone())
    );
    assert_eq!(md.get_repo(&owner, "three").await.unwrap(), None);
    assert_eq!(
        md.get_repo_by_id(&repo.id).await.unwrap(),
        Some(repo.clone())
    );
    assert_eq!(md.get_repo_by_id("no-such-id").await.unwrap(), None);
    let created = audit(&md, &repo.id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].action, "repo.create");
    assert_eq!(created[0].actor, "alice");
    assert_eq!(created[0].owner, owner);
    assert_eq!(created[0].name, "one");
    assert_eq!(created[0].repo_id.as_deref(), Some(repo.id.as_str()));
    assert_eq!(created[0].details, json!({"id": repo.id, "private": false}));
    assert_eq!(audit(&md, &upper.id).await.len(), 1);

    // --- list with keyset pagination --------------------------------------
    for name in ["e", "c", "a", "d", "b"] {
        md.create_repo(&owner, &format!("p-{name}"), false, "alice")
            .await
            .expect("create page repo");
    }
    // Start just before this run's owner, so other data in a shared
    // database does not matter; order ignores letter case ("one", "p-…",
    // "TWO"), and so does the cursor.
    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = Some((owner.clone(), String::new()));
    loop {
        let page = md
            .list_repos(after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())), 2)
            .await
            .expect("list");
        assert!(page.len() <= 2);
        let ours: Vec<_> = page.iter().filter(|r| r.owner == owner).collect();
        seen.extend(ours.iter().map(|r| r.name.clone()));
        if ours.len() < 2 {
            break;
        }
        let last = page.last().expect("non-empty page");
        after = Some((last.owner.clone(), last.name.clone()));
    }
    assert_eq!(seen, ["one", "p-a", "p-b", "p-c", "p-d", "p-e", "TWO"]);
    let first = md.list_repos(None, 1).await.expect("first page");
    assert_eq!(first.len(), 1);

    // --- listing only what a reader may see, and tokens --------------------
    let reader = md
        .create_token(
            &unique("reader"),
            &unique("hash"),
            false,
            &[(upper.id.clone(), Access::Read)],
            None,
        )
        .await
        .expect("create token");
    let public = ["one", "p-a", "p-b", "p-c", "p-d", "p-e"];
    for limit in [1, 2, 50] {
        assert_eq!(
            readable(&md, &owner, Readers::Public, limit).await,
            public,
            "the private TWO is neither listed nor a cursor (limit {limit})"
        );
        assert_eq!(
            readable(&md, &owner, Readers::PublicAndToken(&reader.id), limit).await,
            seen,
            "a token's scopes make TWO visible (limit {limit})"
        );
        assert_eq!(readable(&md, &owner, Readers::Everyone, limit).await, seen);
    }
    let found = md
        .token_by_hash(&unique("hash"))
        .await
        .expect("unknown hash");
    assert_eq!(found, None);
    let stored = md
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == reader.id)
        .expect("listed");
    assert_eq!(
        stored.scopes,
        [NamedScope {
            repo_id: upper.id.clone(),
            owner: owner.clone(),
            name: "TWO".into(),
            access: Access::Read,
        }]
    );
    assert_eq!((stored.expires_at, stored.last_used_at), (None, None));
    // Last use is written at most once per interval.
    md.touch_token(&reader.id, 1_000, 60).await.unwrap();
    md.touch_token(&reader.id, 1_030, 60).await.unwrap();
    let last_used = |md: &Metadata, id: String| {
        let md = md.clone();
        async move {
            md.list_tokens()
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.id == id)
                .expect("listed")
                .last_used_at
        }
    };
    assert_eq!(last_used(&md, reader.id.clone()).await, Some(1_000));
    md.touch_token(&reader.id, 1_060, 60).await.unwrap();
    assert_eq!(last_used(&md, reader.id.clone()).await, Some(1_060));
    // Expiry and the admin scope are stored and read back.
    let hash = unique("hash");
    let deleter = md
        .create_token(
            &unique("deleter"),
            &hash,
            false,
            &[(repo.id.clone(), Access::Admin)],
            Some(12_345),
        )
        .await
        .expect("a token with the admin scope");
    let found = md.token_by_hash(&hash).await.unwrap().expect("found");
    assert_eq!(found.expires_at, Some(12_345));
    assert_eq!(found.scopes, [(repo.id.clone(), Access::Admin)]);
    assert_eq!(found.access_to(&repo.id), Some(Access::Admin));
    // Revoking removes it at once; revoking twice is NotFound.
    assert_eq!(
        md.revoke_token(&deleter.id).await.expect("revoke"),
        hash,
        "it says what it was stored under"
    );
    assert_eq!(md.token_by_hash(&hash).await.unwrap(), None);
    assert!(matches!(
        md.revoke_token(&deleter.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(!md
        .list_tokens()
        .await
        .unwrap()
        .iter()
        .any(|t| t.id == deleter.id));

    // --- first push: creates branches and a tag with a pack ---------------
    let pack1 = NewPack {
        pack_hash: oid(0x01),
        object_count: 20,
        pack_bytes: 1000,
        index_bytes: 300,
        graph_bytes: None,
    };
    let mut first_push = push(
        &repo.id,
        vec![
            create("refs/heads/dev", b),
            create("refs/heads/main", a),
            create("refs/tags/v1", a),
        ],
    );
    first_push.pack = Some(pack1.clone());
    first_push.details = json!({"objects": 20, "bytes": 1300, "storage": "pack"});
    let res = md.commit_push(first_push).await.expect("push 1");
    assert_eq!(res, vec![RefResult::Applied; 3]);
    assert_eq!(
        md.list_refs(&repo.id).await.unwrap(),
        refs(&[
            ("refs/heads/dev", b),
            ("refs/heads/main", a),
            ("refs/tags/v1", a)
        ])
    );
    let head = md.get_repo_by_id(&repo.id).await.unwrap().unwrap().head_ref;
    assert_eq!(head, "refs/heads/main", "main exists, so HEAD is main");
    let packs = md.list_packs(&repo.id).await.unwrap();
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0].pack_hash, pack1.pack_hash);
    assert_eq!(packs[0].object_count, 20);
    assert_eq!(packs[0].pack_bytes, 1000);
    assert_eq!(packs[0].index_bytes, 300);
    let events = audit(&md, &repo.id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].action, "push");
    assert_eq!(events[0].actor, "tester");
    let details = &events[0].details;
    assert_eq!(details["objects"], json!(20));
    assert_eq!(details["storage"], json!("pack"));
    assert_eq!(details["pack"], json!(pack1.pack_hash.to_string()));
    assert_eq!(
        details["refs"],
        json!([
            {"name": "refs/heads/dev", "old": null, "new": b.to_string()},
            {"name": "refs/heads/main", "old": null, "new": a.to_string()},
            {"name": "refs/tags/v1", "old": null, "new": a.to_string()},
        ])
    );

    // --- HEAD follows the first pushed branch when main is absent ---------
    let other = md
        .create_repo(&owner, "no-main", false, "alice")
        .await
        .unwrap();
    let res = md
        .commit_push(push(&other.id, vec![create("refs/tags/t", a)]))
        .await
        .unwrap();
    assert_eq!(res, vec![RefResult::Applied]);
    let head = md
        .get_repo_by_id(&other.id)
        .await
        .unwrap()
        .unwrap()
        .head_ref;
    assert_eq!(head, "refs/heads/main", "a tag alone does not move HEAD");
    let res = md
        .commit_push(push(
            &other.id,
            vec![
                create("refs/tags/t2", a),
                create("refs/heads/zeta", b),
                create("refs/heads/alpha", c),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(res, vec![RefResult::Applied; 3]);
    let head = md
        .get_repo_by_id(&other.id)
        .await
        .unwrap()
        .unwrap()
        .head_ref;
    assert_eq!(
        head, "refs/heads/zeta",
        "first created branch in command order"
    );
    let events = audit(&md, &other.id).await;
    assert_eq!(events[0].details["head"], json!("refs/heads/zeta"));
    // HEAD, once it exists, stays where it is even when later pushes create
    // main, or delete HEAD's branch.
    md.commit_push(push(&other.id, vec![create("refs/heads/main", a)]))
        .await
        .unwrap();
    let head = md
        .get_repo_by_id(&other.id)
        .await
        .unwrap()
        .unwrap()
        .head_ref;
    assert_eq!(head, "refs/heads/zeta");
    let res = md
        .commit_push(push(
            &other.id,
            vec![delete("refs/heads/zeta", b), create("refs/heads/beta", b)],
        ))
        .await
        .unwrap();
    // The branch HEAD names cannot be deleted, as in git.
    assert_eq!(
        res,
        vec![
            RefResult::Rejected(REASON_CURRENT_BRANCH.into()),
            RefResult::Applied
        ]
    );
    let head = md
        .get_repo_by_id(&other.id)
        .await
        .unwrap()
        .unwrap()
        .head_ref;
    assert_eq!(head, "refs/heads/zeta", "HEAD existed before this push");

    // --- CAS misses record nothing ----------------------------------------
    let before = audit(&md, &repo.id).await.len();
    let mut miss = push(
        &repo.id,
        vec![
            update("refs/heads/main", b, c), // main is at a
            create("refs/heads/dev", c),     // dev exists
            delete("refs/tags/v1", b),       // v1 is at a
            update("refs/heads/gone", a, c), // does not exist
            RefUpdate {
                name: "refs/heads/nothing".into(),
                old: None,
                new: None,
            },
        ],
    );
    miss.loose = vec![NewLoose {
        oid: c,
        kind: "commit".into(),
        size: 10,
    }];
    miss.pack = Some(NewPack {
        pack_hash: oid(0x02),
        object_count: 11,
        pack_bytes: 1,
        index_bytes: 1,
        graph_bytes: None,
    });
    let res = md.commit_push(miss).await.unwrap();
    assert_eq!(
        res,
        vec![
            stale(),
            stale(),
            stale(),
            stale(),
            // Deleting a ref that is not there changes nothing, as in git.
            RefResult::Absent,
        ]
    );
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/main").await.unwrap(),
        Some(a)
    );
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/dev").await.unwrap(),
        Some(b)
    );
    assert_eq!(md.get_ref(&repo.id, "refs/tags/v1").await.unwrap(), Some(a));
    assert_eq!(md.get_ref(&repo.id, "refs/heads/gone").await.unwrap(), None);
    assert!(md.list_loose(&repo.id).await.unwrap().is_empty());
    assert_eq!(md.list_packs(&repo.id).await.unwrap().len(), 1);
    assert_eq!(
        audit(&md, &repo.id).await.len(),
        before,
        "no event for nothing"
    );

    // --- atomic push with one failing ref: nothing moves ------------------
    let loose = vec![
        NewLoose {
            oid: c,
            kind: "commit".into(),
            size: 200,
        },
        NewLoose {
            oid: d,
            kind: "tree".into(),
            size: 50,
        },
    ];
    let mixed = vec![
        update("refs/heads/main", a, c),
        create("refs/heads/new", c),
        update("refs/heads/dev", a, d), // stale: dev is at b
    ];
    let mut atomic = push(&repo.id, mixed.clone());
    atomic.atomic = true;
    atomic.loose = loose.clone();
    atomic.pack = Some(NewPack {
        pack_hash: oid(0x03),
        object_count: 12,
        pack_bytes: 1,
        index_bytes: 1,
        graph_bytes: None,
    });
    let res = md.commit_push(atomic).await.unwrap();
    assert_eq!(
        res,
        vec![
            RefResult::Rejected(REASON_ATOMIC_FAILED.into()),
            RefResult::Rejected(REASON_ATOMIC_FAILED.into()),
            stale(),
        ]
    );
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/main").await.unwrap(),
        Some(a)
    );
    assert_eq!(md.get_ref(&repo.id, "refs/heads/new").await.unwrap(), None);
    assert!(md.list_loose(&repo.id).await.unwrap().is_empty());
    assert_eq!(md.list_packs(&repo.id).await.unwrap().len(), 1);
    assert_eq!(audit(&md, &repo.id).await.len(), before);

    // --- the same push, not atomic: passing updates apply -----------------
    let mut non_atomic = push(&repo.id, mixed);
    non_atomic.loose = loose.clone();
    non_atomic.details = json!({"objects": 2, "storage": "loose", "refs": "caller cannot clobber"});
    let res = md.commit_push(non_atomic).await.unwrap();
    assert_eq!(res, vec![RefResult::Applied, RefResult::Applied, stale()]);
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/main").await.unwrap(),
        Some(c)
    );
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/new").await.unwrap(),
        Some(c)
    );
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/dev").await.unwrap(),
        Some(b)
    );
    let stored = md.list_loose(&repo.id).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|l| (l.oid, l.kind.as_str(), l.size))
            .collect::<Vec<_>>(),
        vec![(c, "commit", 200), (d, "tree", 50)]
    );
    assert!(md.loose_exists(&repo.id, &c).await.unwrap());
    assert!(md.loose_exists(&repo.id, &d).await.unwrap());
    assert!(!md.loose_exists(&repo.id, &a).await.unwrap());
    assert!(
        !md.loose_exists(&other.id, &c).await.unwrap(),
        "scoped to the repo"
    );
    let events = audit(&md, &repo.id).await;
    assert_eq!(events.len(), before + 1);
    assert_eq!(events[0].details["storage"], json!("loose"));
    assert_eq!(events[0].details["loose_objects"], json!(2));
    assert_eq!(events[0].details["pack"], json!(null));
    assert_eq!(
        events[0].details["refs"],
        json!([
            {"name": "refs/heads/main", "old": a.to_string(), "new": c.to_string()},
            {"name": "refs/heads/new", "old": null, "new": c.to_string()},
        ])
    );

    // --- delete a ref; a stale delete; re-recording objects is harmless ----
    let res = md
        .commit_push(push(&repo.id, vec![delete("refs/heads/new", d)]))
        .await
        .unwrap();
    assert_eq!(res, vec![stale()]);
    let mut del = push(&repo.id, vec![delete("refs/heads/new", c)]);
    del.pack = Some(pack1.clone()); // already recorded
    del.loose = loose.clone(); // already recorded
    let res = md.commit_push(del).await.unwrap();
    assert_eq!(res, vec![RefResult::Applied]);
    assert_eq!(md.get_ref(&repo.id, "refs/heads/new").await.unwrap(), None);
    assert_eq!(md.list_packs(&repo.id).await.unwrap().len(), 1);
    assert_eq!(md.list_loose(&repo.id).await.unwrap().len(), 2);
    let events = audit(&md, &repo.id).await;
    assert_eq!(events.len(), before + 2);
    assert_eq!(
        events[0].details["refs"],
        json!([{"name": "refs/heads/new", "old": c.to_string(), "new": null}])
    );

    // --- stats --------------------------------------------------------------
    let stats = md.repo_stats(&repo.id).await.unwrap();
    assert_eq!(stats.packs, 1);
    assert_eq!(stats.loose_objects, 2);
    assert_eq!(stats.object_count, 22);
    assert_eq!(stats.pack_bytes, 1000);
    assert_eq!(stats.index_bytes, 300);
    assert_eq!(stats.loose_bytes, 250);
    assert_eq!(stats.stored_bytes, 1550);
    let empty = md.repo_stats(&upper.id).await.unwrap();
    assert_eq!(empty, Default::default());

    // --- bad input is refused before anything happens ---------------------
    let mut bad = push(&repo.id, vec![update("refs/heads/main", c, a)]);
    bad.loose = vec![NewLoose {
        oid: a,
        kind: "blobby".into(),
        size: 1,
    }];
    assert!(matches!(
        md.commit_push(bad).await,
        Err(Error::InvalidInput(_))
    ));
    let mut bad = push(&repo.id, vec![update("refs/heads/main", c, a)]);
    bad.pack = Some(NewPack {
        pack_hash: a,
        object_count: u64::MAX,
        pack_bytes: 1,
        index_bytes: 1,
        graph_bytes: None,
    });
    assert!(matches!(
        md.commit_push(bad).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        md.get_ref(&repo.id, "refs/heads/main").await.unwrap(),
        Some(c)
    );
    assert!(matches!(
        md.commit_push(push("no-such-repo", vec![create("refs/heads/x", a)]))
            .await,
        Err(Error::NotFound(_))
    ));

    // --- audit pagination, newest first -----------------------------------
    let all = audit(&md, &repo.id).await;
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all.last().map(|e| e.action.as_str()), Some("repo.create"));
    let page1 = md.list_audit(Some(&repo.id), None, 2).await.unwrap();
    let page2 = md
        .list_audit(Some(&repo.id), Some(page1[1].id), 2)
        .await
        .unwrap();
    assert_eq!(page1, all[0..2]);
    assert_eq!(page2, all[2..4]);
    let global = md.list_audit(None, None, 5).await.unwrap();
    assert_eq!(global.len(), 5);
    assert!(global.windows(2).all(|w| w[0].id > w[1].id));

    // --- fork ---------------------------------------------------------------
    let snap = md.snapshot(&repo.id).await.unwrap();
    assert_eq!(snap.repo.id, repo.id);
    let fork_id = Metadata::new_repo_id();
    let fork = ForkRepo {
        id: fork_id.clone(),
        source_id: repo.id.clone(),
        owner: owner.clone(),
        name: "fork".into(),
        private: true,
        head_ref: snap.repo.head_ref.clone(),
        refs: snap.refs.clone(),
        packs: snap.packs.clone(),
        loose: snap.loose.clone(),
        lfs: snap.lfs.clone(),
        actor: "bob".into(),
    };
    let forked = md.fork_repo(fork.clone()).await.unwrap();
    assert_eq!(forked.id, fork_id);
    assert_eq!(md.list_refs(&fork_id).await.unwrap(), snap.refs);
    assert_eq!(md.list_packs(&fork_id).await.unwrap(), snap.packs);
    assert_eq!(md.list_loose(&fork_id).await.unwrap(), snap.loose);
    assert_eq!(
        md.repo_stats(&fork_id).await.unwrap(),
        md.repo_stats(&repo.id).await.unwrap()
    );
    let events = audit(&md, &fork_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "repo.fork");
    assert_eq!(events[0].actor, "bob");
    assert_eq!(events[0].details["source_id"], json!(repo.id));
    assert_eq!(events[0].details["source"], json!(format!("{owner}/one")));
    let mut again = fork.clone();
    again.id = Metadata::new_repo_id();
    assert!(matches!(
        md.fork_repo(again).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(md.get_repo(&owner, "fork").await.unwrap().is_some());

    // --- delete the repository ---------------------------------------------
    let deleted = md.delete_repo(&repo.id, "carol").await.unwrap();
    assert_eq!(deleted.id, repo.id);
    assert_eq!(md.get_repo(&owner, "one").await.unwrap(), None);
    assert_eq!(md.get_repo_by_id(&repo.id).await.unwrap(), None);
    assert!(md.list_refs(&repo.id).await.unwrap().is_empty());
    assert!(md.list_packs(&repo.id).await.unwrap().is_empty());
    assert!(md.list_loose(&repo.id).await.unwrap().is_empty());
    assert_eq!(md.repo_stats(&repo.id).await.unwrap(), Default::default());
    let events = audit(&md, &repo.id).await;
    assert_eq!(
        events.len(),
        all.len() + 1,
        "the log survives the repository"
    );
    assert_eq!(events[0].action, "repo.delete");
    assert_eq!(events[0].actor, "carol");
    assert_eq!(events[0].owner, owner);
    assert_eq!(events[0].name, "one");
    assert_eq!(
        events[0].details,
        json!({"id": repo.id, "refs": 3, "packs": 1, "loose_objects": 2, "lfs_objects": 0})
    );
    assert!(matches!(
        md.delete_repo(&repo.id, "carol").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        md.commit_push(push(&repo.id, vec![create("refs/heads/x", a)]))
            .await,
        Err(Error::NotFound(_))
    ));
    // The fork is independent of its source.
    assert_eq!(md.list_refs(&fork_id).await.unwrap(), snap.refs);
    // The name is free again.
    let reborn = md.create_repo(&owner, "one", false, "alice").await.unwrap();
    assert_ne!(reborn.id, repo.id);
    assert!(md.list_refs(&reborn.id).await.unwrap().is_empty());

    // --- state ----------------------------------------------------------------
    md.set_repo_state(&reborn.id, "deleting").await.unwrap();
    assert_eq!(
        md.get_repo_by_id(&reborn.id).await.unwrap().unwrap().state,
        "deleting"
    );
    assert!(matches!(
        md.set_repo_state("no-such-repo", "x").await,
        Err(Error::NotFound(_))
    ));

    // --- peeled tags: recorded many at once, any number of times --------------
    let tagged = md
        .create_repo(&owner, "tagged", false, "alice")
        .await
        .unwrap();
    let pair = |i: u16| {
        let id = |salt: u8| {
            let mut bytes = [salt; 20];
            bytes[..2].copy_from_slice(&i.to_be_bytes());
            ObjectId::from_bytes_or_panic(&bytes)
        };
        (id(1), id(2))
    };
    // More than one statement's worth, a few of them twice.
    let learned: Vec<(ObjectId, ObjectId)> = (0..650).map(pair).collect();
    md.record_peeled(&tagged.id, &learned[..400]).await.unwrap();
    md.record_peeled(&tagged.id, &learned[390..]).await.unwrap();
    md.record_peeled(&tagged.id, &[]).await.unwrap();
    let known = md.peeled_refs(&tagged.id).await.unwrap();
    assert_eq!(known, learned.iter().copied().collect());
    assert!(md.peeled_refs(&reborn.id).await.unwrap().is_empty());

    md.ping().await.unwrap();
}

/// No push leaves a ref where another ref's name continues (`a` beside
/// `a/b`): git clients keep refs as files and could not fetch both. Checked
/// against the outcomes git's own receive-pack gives for the same commands.
async fn names_that_clash(md: Metadata) {
    let owner = unique("clash");
    let repo = md.create_repo(&owner, "r", false, "alice").await.unwrap();
    let (a, b) = (oid(0xaa), oid(0xbb));
    let taken = |existing: &str, new: &str| {
        RefResult::Rejected(format!("'{existing}' exists; cannot create '{new}'"))
    };
    let commit = |updates: Vec<RefUpdate>, atomic: bool| {
        let mut p = push(&repo.id, updates);
        p.atomic = atomic;
        md.commit_push(p)
    };

    let results = commit(
        vec![
            create("refs/heads/main", a),
            create("refs/heads/a", a),
            create("refs/heads/x/y", a),
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(results, vec![RefResult::Applied; 3]);

    // Under an existing ref, over one, and both in one push: each clashing
    // creation is refused on its own; unrelated names with the same start
    // (`a-1`, `x.y`) are not clashes.
    let results = commit(
        vec![
            create("refs/heads/a/b", a),
            create("refs/heads/x", a),
            create("refs/heads/a-1", a),
            create("refs/heads/x.y", a),
            create("refs/heads/q", a),
            create("refs/heads/q/r/s", a),
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        results,
        [
            taken("refs/heads/a", "refs/heads/a/b"),
            taken("refs/heads/x/y", "refs/heads/x"),
            RefResult::Applied,
            RefResult::Applied,
            RefResult::Applied,
            taken("refs/heads/q", "refs/heads/q/r/s"),
        ]
    );

    // Without `atomic`, updates run in order: deleting `a` first frees its
    // name for `a/b`; creating `x/y/z` before deleting `x/y` does not.
    let results = commit(
        vec![
            delete("refs/heads/a", a),
            create("refs/heads/a/b", b),
            create("refs/heads/x/y/z", b),
            delete("refs/heads/x/y", a),
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        results,
        [
            RefResult::Applied,
            RefResult::Applied,
            taken("refs/heads/x/y", "refs/heads/x/y/z"),
            RefResult::Applied,
        ]
    );

    // With `atomic`, names are checked against the refs before the push
    // (a deletion in the same push frees nothing) and against each other,
    // whatever each update does.
    let results = commit(
        vec![delete("refs/heads/a/b", b), create("refs/heads/a", b)],
        true,
    )
    .await
    .unwrap();
    let both = RefResult::Rejected(
        "cannot process 'refs/heads/a' and 'refs/heads/a/b' at the same time".into(),
    );
    assert_eq!(results, [both, taken("refs/heads/a/b", "refs/heads/a")]);
    let together = RefResult::Rejected(
        "cannot process 'refs/heads/n' and 'refs/heads/n/m' at the same time".into(),
    );
    let results = commit(
        vec![create("refs/heads/n", b), create("refs/heads/n/m", b)],
        true,
    )
    .await
    .unwrap();
    assert_eq!(results, [together.clone(), together]);

    assert_eq!(
        md.list_refs(&repo.id).await.unwrap(),
        refs(&[
            ("refs/heads/a-1", a),
            ("refs/heads/a/b", b),
            ("refs/heads/main", a),
            ("refs/heads/q", a),
            ("refs/heads/x.y", a),
        ])
    );

    // HEAD moves only to a branch the repository has; then the old one may go
    // and the new one may not.
    for missing in ["refs/heads/none", "refs/tags/v1", "refs/heads/a"] {
        assert!(
            matches!(
                md.set_head(&repo.id, missing, "alice").await,
                Err(Error::InvalidInput(_))
            ),
            "{missing}"
        );
    }
    let moved = md
        .set_head(&repo.id, "refs/heads/q", "alice")
        .await
        .unwrap();
    assert_eq!(moved.head_ref, "refs/heads/q");
    assert!(moved.cache_version > repo.cache_version);
    let results = commit(
        vec![delete("refs/heads/main", a), delete("refs/heads/q", a)],
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        results,
        [
            RefResult::Applied,
            RefResult::Rejected(REASON_CURRENT_BRANCH.into())
        ]
    );
    let events = audit(&md, &repo.id).await;
    let update = events.iter().find(|e| e.action == "repo.update").unwrap();
    assert_eq!(update.details["head"]["new"], "refs/heads/q");
}

#[tokio::test]
async fn names_that_clash_sqlite() {
    let (md, _dir) = common::sqlite().await;
    names_that_clash(md).await;
}

#[tokio::test]
async fn names_that_clash_postgres() {
    names_that_clash(common::postgres().await).await;
}

#[tokio::test]
async fn story_sqlite() {
    let (md, _dir) = common::sqlite().await;
    story(md).await;
}

#[tokio::test]
async fn story_sqlite_in_memory() {
    let md = Metadata::connect("sqlite::memory:").await.unwrap();
    story(md).await;
}

#[tokio::test]
async fn story_postgres() {
    story(common::postgres().await).await;
}
