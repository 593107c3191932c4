//! `gitclaw migrate`: moving objects out of the legacy `repo_objects` table
//! into the object store, one repository at a time, while the server keeps
//! serving them (dual read: [`crate::service::objects`]).
//!
//! A run takes the repository under a lease (renewed while it runs, so a
//! killed run's lapses), reads the rows not yet logged in oid order a batch at
//! a time — streamed, at most a batch's rows and bytes held — and copies up to
//! `concurrency` batches at once ([`batch`]). When every row is copied the
//! repository is marked migrated and compacted (one delta-compressed pack);
//! a corrupt row (no reading of it hashes to its oid: [`decode`]) is never
//! copied and keeps the repository from being marked migrated.
//!
//! Not for: serving during the migration (that is dual read), or dropping the
//! source rows before a verification ([`verify_repo`]) has found every row in
//! the store.

pub mod batch;
pub mod decode;
pub mod progress;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use gitclaw_metadata::{MigrationStart, MigrationState, Repo};
use gitclaw_pack::ObjectId;

use crate::{app::AppState, error::GitError};
use batch::BatchReport;
use progress::Progress;

/// How a run copies.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// At most this many rows per batch (one pack each).
    pub batch_rows: usize,
    /// A batch stops growing past this many bytes of row data.
    pub batch_bytes: u64,
    /// Batches copied at once.
    pub concurrency: usize,
    /// Compact the repository once it is migrated.
    pub gc: bool,
    /// The lease a run holds a repository under (renewed at a third of it).
    pub lease_secs: u64,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            batch_rows: 10_000,
            batch_bytes: 32 << 20,
            concurrency: 2,
            gc: true,
            lease_secs: 60,
        }
    }
}

/// How a repository's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoOutcome {
    /// Every row is in the store.
    Migrated,
    /// Done earlier; nothing to do.
    AlreadyMigrated,
    /// Another run holds it.
    Held { lease_until: i64 },
    /// Rows that could not be copied: the repository stays unmigrated.
    Failed(String),
}

/// What a run did to one repository.
#[derive(Debug, Clone)]
pub struct RepoReport {
    pub repo: String,
    pub outcome: RepoOutcome,
    /// Rows copied by this run.
    pub copied: u64,
    pub bytes: u64,
    /// Corrupt rows found by this run.
    pub corrupt: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

/// Migrate one repository's legacy rows into the store.
pub async fn migrate_repo(
    state: &AppState,
    repo: &Repo,
    options: &MigrateOptions,
    progress: &Progress,
) -> Result<RepoReport, GitError> {
    let started = Instant::now();
    let name = format!("{}/{}", repo.owner, repo.name);
    let mut report = RepoReport {
        repo: name.clone(),
        outcome: RepoOutcome::Migrated,
        copied: 0,
        bytes: 0,
        corrupt: 0,
        batches: 0,
        elapsed: Duration::ZERO,
    };
    let (total, copied_before) = state.meta.legacy_counts(&repo.id).await?;
    match state
        .meta
        .start_migration(&repo.id, total, options.lease_secs)
        .await?
    {
        MigrationStart::Taken(_) => {}
        MigrationStart::Migrated(_) => {
            report.outcome = RepoOutcome::AlreadyMigrated;
            return Ok(report);
        }
        MigrationStart::Held { lease_until } => {
            report.outcome = RepoOutcome::Held { lease_until };
            return Ok(report);
        }
        MigrationStart::NoRepository => return Err(GitError::RepoNotFound(name)),
    }
    tracing::info!(repo = %name, rows = total, copied_before, "migration started");
    progress.start_repo(&name, total, copied_before);
    let in_flight = Arc::new(AtomicU64::new(0));
    let renewer = spawn_renewer(state, &repo.id, options.lease_secs, in_flight.clone());
    let copied = copy_rows(state, repo, options, progress, &in_flight, &mut report).await;
    renewer.abort();
    progress.finish_repo();
    let result = match copied {
        Ok(()) => conclude(state, repo, options, &mut report).await,
        Err(err) => {
            let why = crate::error::chain(&err);
            let _ = state
                .meta
                .finish_migration(&repo.id, MigrationState::Pending, Some(&why))
                .await;
            Err(err)
        }
    };
    report.elapsed = started.elapsed();
    result.map(|()| report)
}

/// Copy every row not yet logged, `concurrency` batches at a time.
async fn copy_rows(
    state: &AppState,
    repo: &Repo,
    options: &MigrateOptions,
    progress: &Progress,
    in_flight: &Arc<AtomicU64>,
    report: &mut RepoReport,
) -> Result<(), GitError> {
    let mut running = tokio::task::JoinSet::new();
    let mut rows_left = RowCursor::new(repo, options, false);
    let finished = |done: Result<Result<BatchReport, GitError>, tokio::task::JoinError>,
                    report: &mut RepoReport|
     -> Result<(), GitError> {
        let done = done.map_err(|err| GitError::Internal(format!("a batch failed: {err}")))??;
        report.copied += done.copied;
        report.bytes += done.bytes;
        report.corrupt += done.corrupt;
        report.batches += 1;
        state
            .metrics
            .migration_rows(done.copied, done.bytes, done.corrupt);
        progress.advance(done.rows, done.bytes);
        Ok(())
    };
    loop {
        while running.len() >= options.concurrency.max(1) {
            if let Some(done) = running.join_next().await {
                finished(done, report)?;
            }
        }
        let Some(rows) = rows_left.next(state).await? else {
            break;
        };
        let (state, repo_id, in_flight) = (state.clone(), repo.id.clone(), in_flight.clone());
        running.spawn(async move {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let _gauge = crate::metrics::Raised::new(&state.metrics.migration_batches_in_flight);
            let done = batch::copy_batch(&state, &repo_id, rows).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            done
        });
    }
    while let Some(done) = running.join_next().await {
        finished(done, report)?;
    }
    Ok(())
}

/// The legacy rows of a repository a batch at a time, in oid order.
struct RowCursor {
    repo_id: String,
    rows: usize,
    bytes: u64,
    /// Rows the log records too (verification), or only those it does not.
    logged_too: bool,
    after: Option<ObjectId>,
}

impl RowCursor {
    fn new(repo: &Repo, options: &MigrateOptions, logged_too: bool) -> RowCursor {
        RowCursor {
            repo_id: repo.id.clone(),
            rows: options.batch_rows,
            bytes: options.batch_bytes,
            logged_too,
            after: None,
        }
    }

    /// The next batch; `None` past the last row.
    async fn next(
        &mut self,
        state: &AppState,
    ) -> Result<Option<Vec<gitclaw_metadata::LegacyRow>>, GitError> {
        let rows = state
            .meta
            .legacy_batch(
                &self.repo_id,
                self.after.as_ref(),
                self.rows,
                self.bytes,
                self.logged_too,
            )
            .await?;
        self.after = rows.last().map(|row| row.oid);
        Ok((!rows.is_empty()).then_some(rows))
    }
}

/// Every row was dealt with: mark the repository migrated and compact it, or
/// failed when rows could not be copied.
async fn conclude(
    state: &AppState,
    repo: &Repo,
    options: &MigrateOptions,
    report: &mut RepoReport,
) -> Result<(), GitError> {
    let (total, copied) = state.meta.legacy_counts(&repo.id).await?;
    let corrupt = state
        .meta
        .migration_status(&repo.id)
        .await?
        .map_or(0, |s| s.corrupt_rows);
    if copied < total {
        let why = if corrupt > 0 {
            format!(
                "{corrupt} corrupt row(s) were not copied; see `gitclaw migrate --status` and the log, repair them and run again with --retry-corrupt"
            )
        } else {
            format!("{} row(s) are not copied yet; run again", total - copied)
        };
        state
            .meta
            .finish_migration(&repo.id, MigrationState::Failed, Some(&why))
            .await?;
        report.outcome = RepoOutcome::Failed(why);
        return Ok(());
    }
    state
        .meta
        .finish_migration(&repo.id, MigrationState::Migrated, None)
        .await?;
    tracing::info!(repo = %report.repo, rows = total, "migrated");
    if options.gc {
        let gc = crate::service::gc::gc_repo(state, repo).await?;
        tracing::info!(repo = %report.repo, packs_before = gc.packs_before, loose_before = gc.loose_before, "compacted after migration");
    }
    Ok(())
}

/// Why `repo` is not done migrating, if it is not: it has legacy rows the
/// store may not have yet (`None` on a database without the legacy table).
pub async fn unfinished(state: &AppState, repo: &Repo) -> Result<Option<String>, GitError> {
    if !state.legacy_table {
        return Ok(None);
    }
    let name = format!("{}/{}", repo.owner, repo.name);
    match state.meta.migration_status(&repo.id).await? {
        Some(status) if status.state == MigrationState::Migrated => Ok(None),
        Some(status) => Ok(Some(format!(
            "{name} is being migrated out of the legacy table ({}); it is compacted when that is done",
            status.state.as_str()
        ))),
        None => {
            let (rows, _) = state.meta.legacy_counts(&repo.id).await?;
            Ok((rows > 0).then(|| {
                format!("{name} has {rows} rows in the legacy table; run `gitclaw migrate` first")
            }))
        }
    }
}

/// Renew the lease at a third of its length, reporting the batches in flight.
fn spawn_renewer(
    state: &AppState,
    repo_id: &str,
    lease_secs: u64,
    in_flight: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let (state, repo_id) = (state.clone(), repo_id.to_string());
    tokio::spawn(async move {
        let every = Duration::from_secs((lease_secs / 3).max(1));
        loop {
            tokio::time::sleep(every).await;
            let batches = in_flight.load(Ordering::Relaxed);
            if let Err(err) = state
                .meta
                .renew_migration(&repo_id, lease_secs, batches)
                .await
            {
                tracing::warn!(repo = %repo_id, error = %err, "cannot renew the migration's lease");
            }
        }
    })
}

/// What a verification found.
#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    /// Rows whose object the store has, byte for byte.
    pub matched: u64,
    /// Rows the store does not have.
    pub missing: Vec<ObjectId>,
    /// Rows whose object the store has with other bytes.
    pub differing: Vec<ObjectId>,
    /// Rows no reading of which is their object (never copied).
    pub corrupt: Vec<ObjectId>,
}

impl VerifyReport {
    /// Every readable row is in the store as it is in the table.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.differing.is_empty() && self.corrupt.is_empty()
    }
}

/// Read every legacy row of `repo` and the object it holds from the store
/// (the store alone, not the table), and compare. A clean result on a
/// migrated repository is recorded as its verification.
pub async fn verify_repo(
    state: &AppState,
    repo: &Repo,
    options: &MigrateOptions,
    progress: &Progress,
) -> Result<VerifyReport, GitError> {
    let db = Arc::new(crate::service::objects::store_object_db(state, repo).await?);
    let (total, _) = state.meta.legacy_counts(&repo.id).await?;
    progress.start_repo(&format!("verify {}/{}", repo.owner, repo.name), total, 0);
    let mut report = VerifyReport::default();
    let mut every_row = RowCursor::new(repo, options, true);
    while let Some(rows) = every_row.next(state).await? {
        let count = rows.len() as u64;
        let db = db.clone();
        let (checked, bytes) =
            crate::metrics::spawn_blocking(move || compare_rows(&db, rows)).await??;
        report.matched += checked.matched;
        report.missing.extend(checked.missing);
        report.differing.extend(checked.differing);
        report.corrupt.extend(checked.corrupt);
        progress.advance(count, bytes);
    }
    progress.finish_repo();
    let migrated = state
        .meta
        .migration_status(&repo.id)
        .await?
        .is_some_and(|s| s.state == MigrationState::Migrated);
    if migrated && report.is_clean() {
        state.meta.mark_migration_verified(&repo.id).await?;
    }
    Ok(report)
}

/// Whether a read failed because the store could not be reached (as opposed
/// to what it holds being wrong).
fn is_outage(err: &gitclaw_pack::PackError) -> bool {
    match err {
        gitclaw_pack::PackError::Backend(source) => source
            .downcast_ref::<gitclaw_storage::StorageError>()
            .is_some_and(|e| e.is_retryable()),
        gitclaw_pack::PackError::Io { .. } => true,
        _ => false,
    }
}

fn compare_rows(
    db: &gitclaw_pack::odb::ObjectDb,
    rows: Vec<gitclaw_metadata::LegacyRow>,
) -> Result<(VerifyReport, u64), GitError> {
    let mut report = VerifyReport::default();
    let mut reader = db.reader();
    let mut stored = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let oid = row.oid;
        let Ok(decoded) = decode::decode(row, 4 << 30) else {
            report.corrupt.push(oid);
            continue;
        };
        bytes += decoded.content.len() as u64;
        match reader.read(&oid, &mut stored) {
            Ok(None) => report.missing.push(oid),
            Ok(Some(kind)) if kind == decoded.kind && stored == decoded.content => {
                report.matched += 1
            }
            Ok(Some(_)) => report.differing.push(oid),
            // The store's copy no longer reads as the object (a loose file
            // whose hash is off, a damaged pack entry): it differs.
            Err(err) if !is_outage(&err) => {
                tracing::warn!(%oid, error = %err, "stored object does not read back");
                report.differing.push(oid);
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok((report, bytes))
}
