//! Shared helpers: databases to run the same tests on.

#![allow(dead_code)]

use gitclaw_metadata::{Metadata, ObjectId};

// The workspace's shared test support (std and tokio only).
#[path = "../../../../tests/common/services.rs"]
pub mod services;
#[path = "../../../../tests/common/wait.rs"]
pub mod wait;

/// A deterministic object id: byte `n` repeated.
pub fn oid(n: u8) -> ObjectId {
    ObjectId::from_hex(format!("{n:02x}").repeat(20).as_bytes()).expect("valid hex")
}

/// A name no earlier run used, so tests can share a PostgreSQL database.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh SQLite database in a temporary directory (kept alive by the
/// returned guard).
pub async fn sqlite() -> (Metadata, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    let md = Metadata::connect(&url).await.expect("connect sqlite");
    assert_eq!(md.backend_name(), "sqlite");
    (md, dir)
}

/// The PostgreSQL database named by `GITCLAW_TEST_POSTGRES_URL`; panics,
/// saying how to start one, when it is not set.
pub async fn postgres() -> Metadata {
    let md = Metadata::connect(&services::postgres_url())
        .await
        .expect("connect postgres");
    assert_eq!(md.backend_name(), "postgres");
    md
}
