//! Schema set-up: a fresh SQLite database from nothing, reconnecting applies
//! nothing twice and keeps the data, and the connection settings that make
//! concurrent writers wait.

mod common;

use gitclaw_metadata::{Error, Metadata};
use sqlx::{Connection, Row, SqliteConnection};

async fn applied(conn: &mut SqliteConnection) -> Vec<(i64, bool)> {
    sqlx::query("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<bool, _>(1)))
        .collect()
}

async fn inspect(path: &std::path::Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open for inspection")
}

#[tokio::test]
async fn sqlite_fresh_database_and_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    // Neither the file nor its directory exists yet.
    let path = dir.path().join("data").join("nested").join("meta.db");
    let url = format!("sqlite://{}", path.display());

    let md = Metadata::connect(&url).await.expect("fresh connect");
    assert!(path.is_file());
    let repo = md.create_repo("o", "n", true, "a").await.unwrap();
    md.close().await;

    let mut conn = inspect(&path).await;
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "audit_events",
            "lfs_locks",
            "lfs_objects",
            "loose_objects",
            "object_migration_log",
            "pack_closure_refs",
            "pack_closure_tips",
            "packs",
            "peeled_refs",
            "pending_deletions",
            "protected_refs",
            "refs",
            "repo_migration_status",
            "repo_redirects",
            "repositories",
            "store_claims",
            "token_scopes",
            "tokens",
            "webhook_deliveries",
            "webhooks"
        ]
    );
    let first = applied(&mut conn).await;
    assert_eq!(
        first,
        [
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, true),
            (6, true),
            (7, true),
            (8, true),
            (9, true),
            (10, true),
            (11, true),
            (12, true),
            (13, true),
            (14, true),
            (15, true),
            (16, true),
            (17, true)
        ]
    );
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();

    // Reconnect: nothing re-applied, data intact.
    let md = Metadata::connect(&url).await.expect("reconnect");
    assert_eq!(md.get_repo("o", "n").await.unwrap(), Some(repo.clone()));
    assert!(matches!(
        md.create_repo("o", "n", false, "a").await,
        Err(Error::AlreadyExists(_))
    ));
    md.close().await;
    let md = Metadata::connect(&url).await.expect("third connect");
    md.close().await;
    let mut conn = inspect(&path).await;
    assert_eq!(applied(&mut conn).await, first);
    let events: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_foreign_keys_are_enforced() {
    let (md, dir) = common::sqlite().await;
    md.close().await;
    // Our own connection settings are not in play here; the schema's
    // foreign keys are, as sqlx turns them on by default too.
    let mut conn = inspect(&dir.path().join("meta.db")).await;
    let orphan =
        sqlx::query("INSERT INTO refs (repo_id, name, oid) VALUES ('nope', 'refs/heads/x', $1)")
            .bind("a".repeat(40))
            .execute(&mut conn)
            .await;
    assert!(orphan.is_err(), "a ref without its repository is refused");
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(matches!(
        Metadata::connect("mysql://localhost/x").await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn postgres_reconnect_applies_nothing_twice() {
    let md = common::postgres().await;
    md.close().await;
    let md = Metadata::connect(&common::services::postgres_url())
        .await
        .expect("reconnect");
    md.ping().await.unwrap();
}

/// A database from before names were unique regardless of case, holding
/// `Acme/tools` and `acme/Tools`: the upgrade stops with a message saying
/// what to do, and changes nothing (both repositories keep their data).
#[tokio::test]
async fn sqlite_upgrade_with_names_differing_only_in_case_fails_clearly_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.as_str() < "0007" {
            std::fs::copy(entry.path(), old.join(&file)).unwrap();
        }
    }
    let path = dir.path().join("meta.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .expect("the schema before 0007");
    for (id, owner, name) in [("r1", "Acme", "tools"), ("r2", "acme", "Tools")] {
        sqlx::query(
            "INSERT INTO repositories (id, owner, name, private, head_ref, state, created_at) \
             VALUES ($1, $2, $3, 0, 'refs/heads/main', 'active', 0)",
        )
        .bind(id)
        .bind(owner)
        .bind(name)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    let err = Metadata::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect_err("the upgrade must not pick one of the two");
    assert!(
        err.to_string().contains("differ only in letter case"),
        "{err}"
    );
    let mut conn = inspect(&path).await;
    let names: Vec<String> =
        sqlx::query("SELECT owner || '/' || name FROM repositories ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
    assert_eq!(names, ["Acme/tools", "acme/Tools"]);
    let versions: Vec<i64> = applied(&mut conn).await.iter().map(|v| v.0).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6], "0007 is not recorded");
}
