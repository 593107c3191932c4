//! Protected-ref rules: created, listed, refused when bad or repeated, deleted,
//! audited, and gone with their repository.

mod common;

use common::unique;
use gitclaw_metadata::{Error, Metadata};

async fn protected_story(md: Metadata) {
    let repo = md
        .create_repo(&unique("protect"), "app", false, "admin")
        .await
        .unwrap();
    assert!(md.list_protected_refs(&repo.id).await.unwrap().is_empty());
    assert!(matches!(
        md.create_protected_ref(&repo.id, "main", false, false, "admin", 3)
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        md.create_protected_ref("no-such-repo", "refs/heads/main", false, false, "admin", 3)
            .await,
        Err(Error::NotFound(_))
    ));
    let main = md
        .create_protected_ref(&repo.id, "refs/heads/main", false, false, "admin", 3)
        .await
        .unwrap();
    assert!(main.matches("refs/heads/main") && !main.matches("refs/heads/main2"));
    assert!(matches!(
        md.create_protected_ref(&repo.id, "refs/heads/main", true, true, "admin", 3)
            .await,
        Err(Error::AlreadyExists(_))
    ));
    let release = md
        .create_protected_ref(&repo.id, "refs/heads/release/*", true, false, "admin", 3)
        .await
        .unwrap();
    assert!(release.allow_force_push && !release.allow_deletion);
    md.create_protected_ref(&repo.id, "refs/tags/**", false, true, "admin", 3)
        .await
        .unwrap();
    assert!(matches!(
        md.create_protected_ref(&repo.id, "refs/notes/*", false, false, "admin", 3)
            .await,
        Err(Error::InvalidInput(_))
    ));
    let listed = md.list_protected_refs(&repo.id).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], main);
    assert_eq!(listed[1], release);
    assert!(listed[2].allow_deletion && !listed[2].allow_force_push);

    assert!(!md
        .delete_protected_ref(&repo.id, "no-such-rule", "admin")
        .await
        .unwrap());
    assert!(md
        .delete_protected_ref(&repo.id, &main.id, "admin")
        .await
        .unwrap());
    assert_eq!(md.list_protected_refs(&repo.id).await.unwrap().len(), 2);
    let actions: Vec<String> = md
        .list_audit(Some(&repo.id), None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "protection.create").count(),
        3
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "protection.delete").count(),
        1
    );

    md.delete_repo(&repo.id, "admin").await.unwrap();
    assert!(md.list_protected_refs(&repo.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn protected_refs_sqlite() {
    let (md, _dir) = common::sqlite().await;
    protected_story(md).await;
}

#[tokio::test]
async fn protected_refs_postgres() {
    protected_story(common::postgres().await).await;
}
