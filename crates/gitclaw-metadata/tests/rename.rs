//! Renaming a repository: the new name finds it, the old one still leads to
//! it until a repository takes that name, and nothing else about it changes.

mod common;

use common::unique;
use gitclaw_metadata::{Error, Metadata};

async fn rename_story(md: Metadata) {
    let (a, b, c) = (unique("a"), unique("b"), unique("c"));
    let repo = md.create_repo(&a, "tool", false, "admin").await.unwrap();

    // Renamed and moved to another owner at once.
    let renamed = md
        .rename_repo(&repo.id, &b, "Tool2", "admin")
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.id.as_str(),
            renamed.owner.as_str(),
            renamed.name.as_str()
        ),
        (repo.id.as_str(), b.as_str(), "Tool2")
    );
    assert!(renamed.cache_version > repo.cache_version);
    assert_eq!(
        md.get_repo(&b, "tool2").await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(
        md.get_repo(&a, "tool").await.unwrap(),
        None,
        "the old name is no repository's"
    );
    assert_eq!(
        md.find_repo(&a, "TOOL").await.unwrap(),
        Some(renamed.clone()),
        "but leads to the renamed one, in any letter case"
    );
    assert_eq!(
        md.find_repo(&b, "tool2").await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(md.find_repo(&a, "other").await.unwrap(), None);

    // Renamed again: every old name leads to it.
    let third = md
        .rename_repo(&repo.id, &c, "tool3", "admin")
        .await
        .unwrap();
    for (owner, name) in [(&a, "tool"), (&b, "Tool2"), (&c, "tool3")] {
        assert_eq!(
            md.find_repo(owner, name).await.unwrap(),
            Some(third.clone()),
            "{owner}/{name}"
        );
    }
    // A change of letter case only leaves no redirect of its own, and renaming
    // to the name it has changes nothing.
    let cased = md
        .rename_repo(&repo.id, &c, "Tool3", "admin")
        .await
        .unwrap();
    assert_eq!(cased.name, "Tool3");
    assert_eq!(
        md.rename_repo(&repo.id, &c, "Tool3", "admin")
            .await
            .unwrap(),
        cased
    );

    // Another repository's name, in any letter case, is refused.
    let other = md.create_repo(&c, "busy", false, "admin").await.unwrap();
    assert!(matches!(
        md.rename_repo(&repo.id, &c, "BUSY", "admin").await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        md.rename_repo(&repo.id, "", "x", "admin").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        md.rename_repo("no-such-id", &c, "x", "admin").await,
        Err(Error::NotFound(_))
    ));
    // An old name of it is free to take back.
    let back = md
        .rename_repo(&repo.id, &b, "tool2", "admin")
        .await
        .unwrap();
    assert_eq!(md.find_repo(&b, "Tool2").await.unwrap(), Some(back.clone()));

    // A repository created under an old name takes it over.
    let new = md.create_repo(&a, "tool", false, "admin").await.unwrap();
    assert_eq!(md.find_repo(&a, "tool").await.unwrap(), Some(new.clone()));
    assert_eq!(md.find_repo(&c, "tool3").await.unwrap(), Some(back.clone()));

    // Audited, old and new names.
    let events = md.list_audit(Some(&repo.id), None, 10).await.unwrap();
    let renames: Vec<_> = events
        .iter()
        .filter(|e| e.action == "repo.rename")
        .collect();
    assert_eq!(renames.len(), 4, "four renames changed something");
    assert_eq!(renames[0].details["old"], format!("{c}/Tool3"));
    assert_eq!(renames[0].details["new"], format!("{b}/tool2"));

    // Deleted: no old name leads anywhere.
    md.delete_repo(&repo.id, "admin").await.unwrap();
    assert_eq!(md.find_repo(&c, "tool3").await.unwrap(), None);
    assert_eq!(md.find_repo(&b, "tool2").await.unwrap(), None);
    assert_eq!(md.find_repo(&c, "busy").await.unwrap(), Some(other));
}

#[tokio::test]
async fn rename_sqlite() {
    let (md, _dir) = common::sqlite().await;
    rename_story(md).await;
}

#[tokio::test]
async fn rename_postgres() {
    rename_story(common::postgres().await).await;
}
