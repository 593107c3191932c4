//! Webhooks and their outbox: a push that moves refs queues one delivery per
//! webhook in its own transaction (and one that moves nothing queues none),
//! deliverers claim due deliveries under a lease, and outcomes are kept.

mod common;

use common::{oid, unique};
use gitclaw_metadata::{
    DeliveryOutcome, Error, Metadata, NewWebhook, PushCommit, RefUpdate, PING_EVENT,
};

fn push(repo_id: &str, updates: Vec<RefUpdate>) -> PushCommit {
    PushCommit {
        repo_id: repo_id.into(),
        updates,
        atomic: false,
        pack: None,
        loose: Vec::new(),
        actor: "token:ci".into(),
        details: serde_json::Value::Null,
        pack_closure: None,
        push_options: Vec::new(),
        ref_details: Default::default(),
    }
}

fn new_hook<'a>(repo_id: &'a str, url: &'a str, events: &'a [String]) -> NewWebhook<'a> {
    NewWebhook {
        repo_id,
        url,
        secret: "s3cret",
        events,
        actor: "admin",
        max_per_repo: 2,
    }
}

/// Claim everything due now, with a lease of a minute.
async fn claim_all(md: &Metadata, now: i64) -> Vec<gitclaw_metadata::DueDelivery> {
    md.claim_deliveries(now, now + 60, 100).await.unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn webhook_story(md: Metadata) {
    let owner = unique("hooks");
    let repo = md.create_repo(&owner, "app", false, "admin").await.unwrap();
    let other = md
        .create_repo(&owner, "other", false, "admin")
        .await
        .unwrap();
    let push_events = vec!["push".to_string()];

    // Bad requests change nothing.
    let none: Vec<String> = Vec::new();
    assert!(matches!(
        md.create_webhook(
            new_hook(&repo.id, "http://127.0.0.1:9/", &none),
            &serde_json::json!({})
        )
        .await,
        Err(Error::InvalidInput(_))
    ));
    let unknown = vec!["tag".to_string()];
    assert!(matches!(
        md.create_webhook(
            new_hook(&repo.id, "http://127.0.0.1:9/", &unknown),
            &serde_json::json!({})
        )
        .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        md.create_webhook(
            new_hook("no-such-repo", "http://127.0.0.1:9/", &push_events),
            &serde_json::json!({})
        )
        .await,
        Err(Error::NotFound(_))
    ));
    assert!(md.list_webhooks(&repo.id).await.unwrap().is_empty());

    // A webhook is created with its ping queued, due now.
    let ping = serde_json::json!({ "event": "ping" });
    let hook = md
        .create_webhook(
            new_hook(&repo.id, "http://127.0.0.1:9/hook", &push_events),
            &ping,
        )
        .await
        .unwrap();
    assert!(hook.signed);
    assert_eq!(hook.events, push_events);
    assert_eq!(
        md.list_webhooks(&repo.id).await.unwrap(),
        vec![hook.clone()]
    );
    assert!(md.list_webhooks(&other.id).await.unwrap().is_empty());
    let t = now();
    let due = claim_all(&md, t).await;
    let pings: Vec<_> = due.iter().filter(|d| d.hook_id == hook.id).collect();
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].event, PING_EVENT);
    assert_eq!(pings[0].url, "http://127.0.0.1:9/hook");
    assert_eq!(pings[0].secret, "s3cret");
    assert_eq!(pings[0].attempts, 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&pings[0].payload).unwrap(),
        ping
    );
    // Leased: not claimed again before the lease runs out, then again.
    assert!(claim_all(&md, t).await.iter().all(|d| d.hook_id != hook.id));
    let again = claim_all(&md, t + 61).await;
    let again: Vec<_> = again.iter().filter(|d| d.hook_id == hook.id).collect();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    md.finish_delivery(
        again[0].id,
        &DeliveryOutcome::Delivered { status: 204 },
        t + 61,
    )
    .await
    .unwrap();

    // A push that moves a ref queues its delivery; the payload names what moved,
    // with what the caller adds about each ref.
    let mut moving = push(
        &repo.id,
        vec![
            RefUpdate {
                name: "refs/heads/main".into(),
                old: None,
                new: Some(oid(1)),
            },
            RefUpdate {
                name: "refs/heads/stale".into(),
                old: Some(oid(9)),
                new: Some(oid(2)),
            },
        ],
    );
    moving.ref_details.insert(
        "refs/heads/main".into(),
        serde_json::json!({ "head_commit": { "id": oid(1).to_string() } }),
    );
    let results = md.commit_push(moving).await.unwrap();
    assert!(results[0].is_applied() && !results[1].is_applied());
    let due = claim_all(&md, t + 62).await;
    let pushed: Vec<_> = due.iter().filter(|d| d.hook_id == hook.id).collect();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].event, "push");
    let payload: serde_json::Value = serde_json::from_str(&pushed[0].payload).unwrap();
    assert_eq!(payload["repository"]["owner"], owner.as_str());
    assert_eq!(payload["repository"]["name"], "app");
    assert_eq!(payload["pusher"], "token:ci");
    assert_eq!(
        payload["refs"],
        serde_json::json!([{
            "ref": "refs/heads/main",
            "before": "0".repeat(40),
            "after": oid(1).to_string(),
            "created": true,
            "deleted": false,
            "head_commit": { "id": oid(1).to_string() },
        }]),
        "only the ref that moved"
    );
    // Retried later, then given up.
    let retry_at = t + 100;
    md.finish_delivery(
        pushed[0].id,
        &DeliveryOutcome::Retry {
            status: Some(500),
            error: "HTTP 500".into(),
            at: retry_at,
        },
        t + 62,
    )
    .await
    .unwrap();
    assert!(claim_all(&md, retry_at - 1)
        .await
        .iter()
        .all(|d| d.hook_id != hook.id));
    let retried = claim_all(&md, retry_at).await;
    let retried: Vec<_> = retried.iter().filter(|d| d.hook_id == hook.id).collect();
    assert_eq!((retried.len(), retried[0].attempts), (1, 2));
    md.finish_delivery(
        retried[0].id,
        &DeliveryOutcome::Failed {
            status: None,
            error: "connection refused".into(),
        },
        retry_at,
    )
    .await
    .unwrap();
    assert!(claim_all(&md, retry_at + 10_000)
        .await
        .iter()
        .all(|d| d.hook_id != hook.id));

    // The deliveries as the API shows them, newest first.
    let shown = md
        .list_deliveries(&repo.id, &hook.id, 10)
        .await
        .unwrap()
        .unwrap();
    let summary: Vec<(&str, &str, u64, Option<u16>)> = shown
        .iter()
        .map(|d| {
            (
                d.event.as_str(),
                d.status.as_str(),
                d.attempts,
                d.last_status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("push", "failed", 2, None),
            ("ping", "delivered", 2, Some(204))
        ]
    );
    assert_eq!(shown[0].last_error.as_deref(), Some("connection refused"));

    // The failed one queued again by hand: a new delivery of the same payload.
    assert_eq!(
        md.redeliver(&other.id, &hook.id, shown[0].id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        md.redeliver(&repo.id, &hook.id, i64::MAX).await.unwrap(),
        None
    );
    let again = md
        .redeliver(&repo.id, &hook.id, shown[0].id)
        .await
        .unwrap()
        .unwrap();
    assert!(again.id > shown[0].id);
    assert_eq!(
        (again.event.as_str(), again.status.as_str(), again.attempts),
        ("push", "pending", 0)
    );
    let due = claim_all(&md, now() + 1).await;
    let redone: Vec<_> = due.iter().filter(|d| d.hook_id == hook.id).collect();
    assert_eq!(redone.len(), 1);
    assert_eq!(redone[0].id, again.id);
    assert_eq!(redone[0].payload, pushed[0].payload);
    md.finish_delivery(again.id, &DeliveryOutcome::Delivered { status: 200 }, now())
        .await
        .unwrap();
    assert_eq!(
        md.list_deliveries(&other.id, &hook.id, 10).await.unwrap(),
        None
    );

    // A push that moves nothing queues nothing.
    let results = md
        .commit_push(push(
            &repo.id,
            vec![RefUpdate {
                name: "refs/heads/main".into(),
                old: Some(oid(7)),
                new: Some(oid(3)),
            }],
        ))
        .await
        .unwrap();
    assert!(!results[0].is_applied());
    assert!(claim_all(&md, retry_at + 10_000)
        .await
        .iter()
        .all(|d| d.hook_id != hook.id));

    // At most `max_per_repo` webhooks.
    let second = md
        .create_webhook(
            NewWebhook {
                secret: "",
                ..new_hook(&repo.id, "http://127.0.0.1:9/b", &push_events)
            },
            &ping,
        )
        .await
        .unwrap();
    assert!(!second.signed);
    assert!(matches!(
        md.create_webhook(
            new_hook(&repo.id, "http://127.0.0.1:9/c", &push_events),
            &ping
        )
        .await,
        Err(Error::InvalidInput(_))
    ));

    // Pruning keeps what is pending.
    md.prune_deliveries(retry_at + 1).await.unwrap();
    assert!(md
        .list_deliveries(&repo.id, &hook.id, 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert_eq!(
        md.list_deliveries(&repo.id, &second.id, 10)
            .await
            .unwrap()
            .unwrap()
            .len(),
        1,
        "the second webhook's ping is still pending"
    );

    // Deleting a webhook takes its deliveries; both are audited.
    assert!(!md
        .delete_webhook(&other.id, &second.id, "admin")
        .await
        .unwrap());
    assert!(md
        .delete_webhook(&repo.id, &second.id, "admin")
        .await
        .unwrap());
    assert_eq!(
        md.list_webhooks(&repo.id).await.unwrap(),
        vec![hook.clone()]
    );
    assert!(claim_all(&md, retry_at + 10_000)
        .await
        .iter()
        .all(|d| d.hook_id != second.id));
    let actions: Vec<String> = md
        .list_audit(Some(&repo.id), None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "hook.create").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| *a == "hook.delete").count(), 1);

    // A push of more refs than a delivery names: the first ones, and the count.
    let many = gitclaw_metadata::WEBHOOK_MAX_REFS + 2;
    let updates: Vec<RefUpdate> = (0..many)
        .map(|n| RefUpdate {
            name: format!("refs/tags/t{n:05}"),
            old: None,
            new: Some(oid(4)),
        })
        .collect();
    md.commit_push(push(&repo.id, updates)).await.unwrap();
    let due = claim_all(&md, retry_at + 10_000).await;
    let big: Vec<_> = due.iter().filter(|d| d.hook_id == hook.id).collect();
    assert_eq!(big.len(), 1);
    let payload: serde_json::Value = serde_json::from_str(&big[0].payload).unwrap();
    let named = payload["refs"].as_array().unwrap();
    assert_eq!(named.len(), gitclaw_metadata::WEBHOOK_MAX_REFS);
    assert_eq!(named[0]["ref"], "refs/tags/t00000");
    assert_eq!(payload["ref_count"], many);
    assert_eq!(payload["push_options"], serde_json::json!([]));

    // Push options: the first ones, as many as fit both caps, and the count.
    let option = |n: usize, len: usize| format!("o{n}={}", "x".repeat(len));
    for (options, named) in [
        // Few and short: all of them.
        (vec![option(0, 1), option(1, 1)], 2),
        // More than the count cap.
        (
            (0..gitclaw_metadata::WEBHOOK_MAX_PUSH_OPTIONS + 5)
                .map(|n| option(n, 1))
                .collect(),
            gitclaw_metadata::WEBHOOK_MAX_PUSH_OPTIONS,
        ),
        // Long ones: those whose bytes together fit.
        (
            (0..8)
                .map(|n| option(n, gitclaw_metadata::WEBHOOK_MAX_PUSH_OPTION_BYTES / 3))
                .collect(),
            2,
        ),
    ] {
        let mut with_options = push(
            &repo.id,
            vec![RefUpdate {
                name: "refs/heads/options".into(),
                old: None,
                new: Some(oid(5)),
            }],
        );
        with_options.push_options = options.clone();
        md.commit_push(with_options).await.unwrap();
        md.commit_push(push(
            &repo.id,
            vec![RefUpdate {
                name: "refs/heads/options".into(),
                old: Some(oid(5)),
                new: None,
            }],
        ))
        .await
        .unwrap();
        let due = claim_all(&md, retry_at + 10_000).await;
        let payloads: Vec<serde_json::Value> = due
            .iter()
            .filter(|d| d.hook_id == hook.id)
            .map(|d| serde_json::from_str(&d.payload).unwrap())
            .collect();
        let sent = payloads
            .iter()
            .find(|p| p["refs"][0]["after"] == serde_json::json!(oid(5).to_string()))
            .expect("the push's delivery");
        assert_eq!(
            sent["push_options"],
            serde_json::json!(options[..named]),
            "{} options",
            options.len()
        );
        assert_eq!(sent["push_option_count"], options.len());
    }

    // Deleting the repository takes its webhooks.
    md.delete_repo(&repo.id, "admin").await.unwrap();
    assert!(md.list_webhooks(&repo.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn webhooks_sqlite() {
    let (md, _dir) = common::sqlite().await;
    webhook_story(md).await;
}

/// Then: deliverers claiming at once never take the same delivery twice (in
/// the same test: a claim takes every due delivery in the database).
#[tokio::test]
async fn webhooks_postgres() {
    let md = common::postgres().await;
    webhook_story(md.clone()).await;
    let repo = md
        .create_repo(&unique("claims"), "app", false, "admin")
        .await
        .unwrap();
    let events = vec!["push".to_string()];
    let hook = md
        .create_webhook(
            new_hook(&repo.id, "http://127.0.0.1:9/", &events),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    for n in 0..40u8 {
        md.commit_push(push(
            &repo.id,
            vec![RefUpdate {
                name: format!("refs/heads/b{n}"),
                old: None,
                new: Some(oid(n + 1)),
            }],
        ))
        .await
        .unwrap();
    }
    let t = now();
    let claims = (0..4).map(|_| {
        let md = md.clone();
        tokio::spawn(async move { md.claim_deliveries(t, t + 60, 7).await.unwrap() })
    });
    let mut mine = Vec::new();
    for claim in claims {
        mine.extend(
            claim
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.hook_id == hook.id)
                .map(|d| d.id),
        );
    }
    let distinct: std::collections::HashSet<&i64> = mine.iter().collect();
    assert_eq!(distinct.len(), mine.len(), "a delivery was claimed twice");
    // Nothing left for servers tested on this database later to try.
    md.delete_repo(&repo.id, "admin").await.unwrap();
}
