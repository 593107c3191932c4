//! `gitclaw migrate`: the command line of [`crate::service::migrate`] — which
//! repositories, what to do with them, and what to print.

use std::time::Instant;

use clap::Args;
use gitclaw_metadata::{MigrationState, Repo};

use crate::{
    app::AppState,
    config::Config,
    service::migrate::{self, progress::human_bytes, progress::Progress, MigrateOptions},
};

/// Move objects out of the legacy `repo_objects` table into the object store
/// (resumable; the server keeps serving the repositories meanwhile).
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The repository to migrate (OWNER/NAME).
    #[arg(long, value_name = "OWNER/NAME", conflicts_with = "all")]
    repo: Option<String>,
    /// Every repository with rows in the legacy table.
    #[arg(long)]
    all: bool,
    /// Rows per batch (one pack each; a batch of ten rows or fewer is stored as loose objects).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_size: u32,
    /// A batch also ends past this many megabytes of row data.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch_mb: u32,
    /// Batches copied at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
    /// Do not compact a repository once it is migrated.
    #[arg(long)]
    no_gc: bool,
    /// Only compare every legacy row with the store; nothing is copied. A
    /// migrated repository found whole is marked verified.
    #[arg(long, conflicts_with_all = ["status", "drop_source"])]
    verify_only: bool,
    /// Show where each repository's migration stands, and nothing else.
    #[arg(long, conflicts_with_all = ["repo", "all"])]
    status: bool,
    /// Delete the legacy rows of migrated repositories — after verifying, here
    /// and now, that the store has every one of them byte for byte.
    #[arg(long)]
    drop_source: bool,
    /// Look again at rows found corrupt before (after repairing them).
    #[arg(long)]
    retry_corrupt: bool,
    /// How long a run holds a repository without renewing (it renews at a
    /// third of this): a killed run's repositories are free again after it.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=3600))]
    lease_secs: u64,
}

pub async fn run(config: Config, args: MigrateArgs) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    if !state.legacy_table {
        println!("no legacy table (repo_objects) in this database: nothing to migrate");
        return Ok(());
    }
    if args.status {
        return status(&state).await;
    }
    let repos = select(&state, &args).await?;
    let options = MigrateOptions {
        batch_rows: args.batch_size as usize,
        batch_bytes: u64::from(args.batch_mb) << 20,
        concurrency: args.concurrency as usize,
        gc: !args.no_gc,
        lease_secs: args.lease_secs,
    };
    let progress = Progress::new(false);
    if args.verify_only {
        return verify(&state, &repos, &options, &progress, false).await;
    }
    if args.drop_source {
        return verify(&state, &repos, &options, &progress, true).await;
    }
    copy(&state, &repos, &options, &progress, args.retry_corrupt).await
}

/// The repositories the arguments name.
async fn select(state: &AppState, args: &MigrateArgs) -> anyhow::Result<Vec<Repo>> {
    if let Some(full) = &args.repo {
        let (owner, name) = super::split_name(full)?;
        let repo = state
            .meta
            .get_repo(owner, name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("repository not found: {full}"))?;
        return Ok(vec![repo]);
    }
    if !args.all {
        anyhow::bail!("say which repositories: --repo OWNER/NAME or --all (or --status)");
    }
    let mut ids: Vec<String> = state
        .meta
        .legacy_repos()
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.extend(
        state
            .meta
            .list_migration_status()
            .await?
            .into_iter()
            .map(|s| s.repo_id),
    );
    ids.sort();
    ids.dedup();
    let mut repos = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(repo) = state.meta.get_repo_by_id(&id).await? {
            repos.push(repo);
        }
    }
    Ok(repos)
}

async fn copy(
    state: &AppState,
    repos: &[Repo],
    options: &MigrateOptions,
    progress: &Progress,
    retry_corrupt: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (mut objects, mut bytes, mut corrupt, mut failed) = (0u64, 0u64, 0u64, 0usize);
    for repo in repos {
        if retry_corrupt {
            state.meta.retry_corrupt_rows(&repo.id).await?;
        }
        let report = migrate::migrate_repo(state, repo, options, progress).await?;
        objects += report.copied;
        bytes += report.bytes;
        corrupt += report.corrupt;
        let rate = report.copied as f64 / report.elapsed.as_secs_f64().max(0.001);
        match &report.outcome {
            migrate::RepoOutcome::Migrated => println!(
                "{}: migrated ({} objects, {} copied by this run in {:.1}s, {:.0} objects/s)",
                report.repo,
                report.copied,
                human_bytes(report.bytes),
                report.elapsed.as_secs_f64(),
                rate
            ),
            migrate::RepoOutcome::AlreadyMigrated => {
                println!("{}: already migrated", report.repo)
            }
            migrate::RepoOutcome::Held { lease_until } => {
                failed += 1;
                println!(
                    "{}: skipped: another migration holds it (its lease ends at unix time {lease_until})",
                    report.repo
                )
            }
            migrate::RepoOutcome::Failed(why) => {
                failed += 1;
                println!("{}: NOT migrated: {why}", report.repo)
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    println!(
        "done: {} repositories, {objects} objects, {}, {corrupt} corrupt rows, {elapsed:.1}s, {:.0} objects/s, {}/s",
        repos.len(),
        human_bytes(bytes),
        objects as f64 / elapsed,
        human_bytes((bytes as f64 / elapsed) as u64)
    );
    if failed > 0 {
        anyhow::bail!("{failed} repositories are not migrated");
    }
    Ok(())
}

/// Compare every legacy row with the store; with `drop`, delete the rows of
/// each migrated repository found whole.
async fn verify(
    state: &AppState,
    repos: &[Repo],
    options: &MigrateOptions,
    progress: &Progress,
    drop: bool,
) -> anyhow::Result<()> {
    let mut problems = 0usize;
    for repo in repos {
        let name = format!("{}/{}", repo.owner, repo.name);
        let report = migrate::verify_repo(state, repo, options, progress).await?;
        if report.is_clean() {
            println!(
                "{name}: verified: all {} rows are in the store",
                report.matched
            );
        } else {
            problems += 1;
            println!(
                "{name}: {} rows match, {} missing from the store, {} differ, {} corrupt",
                report.matched,
                report.missing.len(),
                report.differing.len(),
                report.corrupt.len()
            );
            let named = report
                .missing
                .iter()
                .map(|oid| format!("  missing {oid}"))
                .chain(
                    report
                        .differing
                        .iter()
                        .map(|oid| format!("  differs {oid}")),
                )
                .chain(report.corrupt.iter().map(|oid| format!("  corrupt {oid}")));
            for line in named.take(20) {
                println!("{line}");
            }
            continue;
        }
        if drop {
            match state.meta.drop_legacy_rows(&repo.id).await {
                Ok(rows) => println!("{name}: dropped its {rows} legacy rows"),
                Err(err) => {
                    problems += 1;
                    println!("{name}: legacy rows kept: {err}");
                }
            }
        }
    }
    if problems > 0 {
        anyhow::bail!("{problems} repositories did not verify");
    }
    Ok(())
}

/// One line per repository a migration has touched or will touch.
async fn status(state: &AppState) -> anyhow::Result<()> {
    let statuses = state.meta.list_migration_status().await?;
    let legacy = state.meta.legacy_repos().await?;
    println!(
        "{:<40} {:<12} {:>10} {:>10} {:>8} {:>10}  note",
        "repository", "state", "rows", "copied", "corrupt", "bytes"
    );
    let mut ids: Vec<&str> = legacy.iter().map(|(id, _)| id.as_str()).collect();
    ids.extend(statuses.iter().map(|s| s.repo_id.as_str()));
    ids.sort();
    ids.dedup();
    for id in ids {
        let name = match state.meta.get_repo_by_id(id).await? {
            Some(repo) => format!("{}/{}", repo.owner, repo.name),
            None => id.to_string(),
        };
        let rows = legacy.iter().find(|(r, _)| r == id).map_or(0, |(_, n)| *n);
        let status = statuses.iter().find(|s| s.repo_id == id);
        let state_name = status.map_or("pending", |s| {
            if s.state == MigrationState::InProgress && !s.is_running() {
                "stopped"
            } else {
                s.state.as_str()
            }
        });
        let note = status
            .map(|s| {
                let mut note = Vec::new();
                if s.verified_at.is_some() {
                    note.push("verified".to_string());
                }
                if s.source_dropped_at.is_some() {
                    note.push("source dropped".to_string());
                }
                if let Some(error) = &s.last_error {
                    note.push(error.clone());
                }
                note.join("; ")
            })
            .unwrap_or_default();
        println!(
            "{:<40} {:<12} {:>10} {:>10} {:>8} {:>10}  {note}",
            name,
            state_name,
            rows,
            status.map_or(0, |s| s.objects_copied),
            status.map_or(0, |s| s.corrupt_rows),
            human_bytes(status.map_or(0, |s| s.bytes_copied)),
        );
    }
    Ok(())
}
