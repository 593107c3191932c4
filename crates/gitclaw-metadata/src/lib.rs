//! GitClaw's metadata: repositories, refs, the pack list, the loose-object
//! index and the audit log, kept in PostgreSQL or SQLite through sqlx.
//!
//! For: every piece of mutable state that is not object bytes. Refs move by
//! compare-and-swap inside one transaction per push ([`Metadata::commit_push`]),
//! which also records the stored pack / loose objects and appends the audit
//! event, so a ref never moves without its bookkeeping and vice versa.
//!
//! Not for: object bytes or storage keys (the storage crate), Git semantics
//! such as fast-forward checks or ref-name validation (the server decides
//! those before calling in), HTTP.
//!
//! One code path serves both databases: queries go through sqlx's `Any`
//! driver with `$n` placeholders, which SQLite accepts as well. Only the
//! migrations (`migrations/sqlite`, `migrations/postgres`) and the way a
//! write transaction starts differ per database.
//!
//! Every public operation runs in a `db` tracing span and is reported, with
//! its duration, to the [`QueryObserver`] given to [`Metadata::with_observer`].
//!
//! Conventions: object ids are [`ObjectId`]s, stored as 40-char lowercase hex;
//! repository ids are UUID v4 strings made here; timestamps are `i64` unix
//! seconds.
//!
//! ```no_run
//! # async fn demo() -> gitclaw_metadata::Result<()> {
//! let md = gitclaw_metadata::Metadata::connect("sqlite://gitclaw-data/gitclaw.db").await?;
//! let repo = md.create_repo("alice", "hello", false, "alice").await?;
//! assert!(md.list_refs(&repo.id).await?.is_empty());
//! # Ok(()) }
//! ```

mod audit;
mod claims;
mod compaction;
mod connect;
mod crash;
mod error;
mod hooks;
mod lfs;
mod migration;
mod objects;
mod observe;
mod protected;
mod push;
mod refs;
mod repos;
mod tokens;
mod util;

pub use audit::{AuditAction, AuditEvent};
pub use claims::{DeleteCandidate, Recorded, UploadClaim};
pub use compaction::{Compaction, CompactionApplied, DueDeletion, ObjectSnapshot};
pub use connect::{Backend, ConnectOptions, WARM_CONNECTIONS};
pub use crash::crash_point;
pub use error::{Error, Result};
pub use gix_hash::ObjectId;
pub use hooks::{
    Delivery, DeliveryOutcome, DueDelivery, NewWebhook, Webhook, PING_EVENT, WEBHOOK_EVENTS,
};
pub use lfs::{LfsLock, LfsRecord, LfsUsage, LockCreated, LockFilter};
pub use migration::{
    LegacyEntry, LegacyRow, MigrationBatch, MigrationStart, MigrationState, MigrationStatus,
    RowOutcome,
};
pub use objects::{LooseRecord, PackClosure, PackRecord, RepoSize, RepoStats, OBJECT_KINDS};
pub use observe::QueryObserver;
pub use protected::{pattern_problem, ProtectedRef, MAX_PATTERN_BYTES};
pub use push::{
    NewLoose, NewPack, PushCommit, RefResult, RefUpdate, REASON_ATOMIC_FAILED,
    REASON_CURRENT_BRANCH, REASON_STALE, WEBHOOK_MAX_PUSH_OPTIONS, WEBHOOK_MAX_PUSH_OPTION_BYTES,
    WEBHOOK_MAX_REFS,
};
pub use refs::RefRecord;
pub use repos::{ForkRepo, Readers, Repo, RepoSnapshot, DEFAULT_HEAD_REF};
pub use tokens::{Access, NamedScope, Token, TokenSummary};

use sqlx::AnyPool;

/// Handle to the metadata database. Cheap to clone: clones share one
/// connection pool, and the observer set with [`Metadata::with_observer`].
#[derive(Clone, Debug)]
pub struct Metadata {
    pool: AnyPool,
    backend: Backend,
    observer: observe::ObserverSlot,
    /// Whether the legacy object table exists, looked up once per pool: the
    /// legacy queries ask on every request of a repository being migrated.
    legacy_table: std::sync::Arc<tokio::sync::OnceCell<bool>>,
}

impl Metadata {
    /// The database in use, `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Which database this handle talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round-trips a trivial query: for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        self.timed("ping", async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// Closes every pooled connection and waits for them to finish. Later
    /// calls on any clone fail with [`Error::Database`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
