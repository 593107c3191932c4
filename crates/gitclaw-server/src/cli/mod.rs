//! The `gitclaw` command line.

mod migrate;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    app::AppState,
    config::Config,
    service::{repos, tokens},
};

#[derive(Debug, Parser)]
#[command(
    name = "gitclaw",
    version,
    about = "A Git smart-HTTP server that keeps objects in S3-compatible storage",
    after_help = "Every setting, its default and what it does: gitclaw serve --help"
)]
struct Cli {
    /// A TOML configuration file; environment variables override it.
    #[arg(long, global = true, env = "GITCLAW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    #[command(after_help = crate::config::docs::help_text())]
    Serve,
    /// Manage repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Validate the configuration and reach the database and the object store.
    Check,
    /// Manage access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Compact repositories: merge loose objects and packs into one pack per repo
    /// (safe while the server runs), then delete replaced keys whose grace period is over.
    Gc {
        /// OWNER/NAME; every repository when omitted.
        repo: Option<String>,
    },
    /// Check repositories' stored objects whole, as `git fsck` checks a
    /// repository: every object of every pack and every loose object read and
    /// hashed against its id, and everything the refs reach found; each
    /// pack's commit-graph against its checksum and its commits; and the
    /// refs: names git refuses, names that clash (`a` beside `a/b`), branches
    /// naming no commit. Exits non-zero when anything is wrong.
    Fsck {
        /// OWNER/NAME; every repository when omitted.
        repo: Option<String>,
    },
    Migrate(migrate::MigrateArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line of the output.
    Create {
        /// A name for the token (shown in the audit log).
        #[arg(long)]
        name: String,
        /// The token may do anything.
        #[arg(long)]
        admin: bool,
        /// OWNER/NAME:read, OWNER/NAME:write (push) or OWNER/NAME:admin (push and
        /// delete the repository); repeatable.
        #[arg(long = "repo")]
        repos: Vec<String>,
        /// The token stops working this many days from now (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List tokens: id, name, access, created, expires and last used (never the secret).
    List,
    /// Revoke a token: every server refuses it from its next request on.
    Revoke {
        /// The token's id (see `gitclaw token list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum RepoCommand {
    /// Create a repository.
    Create {
        /// OWNER/NAME
        name: String,
        /// Only readers with a token may see it.
        #[arg(long)]
        private: bool,
    },
    /// Delete a repository and every object it stores.
    Delete {
        /// OWNER/NAME
        name: String,
    },
    /// Fork a repository: a server-side copy of its objects and refs.
    Fork {
        /// OWNER/NAME of the source
        source: String,
        /// OWNER/NAME of the new repository
        target: String,
    },
    /// List repositories.
    List,
}

/// Entry point of the binary: one readable line and a non-zero status on any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(errors) => {
            for err in errors {
                eprintln!("gitclaw: configuration error: {err}");
            }
            return ExitCode::from(2);
        }
    };
    let _telemetry = crate::telemetry::init(config.log_format);
    for warning in &config.warnings {
        tracing::warn!("configuration: {warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("gitclaw: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => Box::pin(serve(config)).await,
            Command::Repo(RepoCommand::Create { name, private }) => {
                repo_create(config, &name, private).await
            }
            Command::Repo(RepoCommand::Delete { name }) => repo_delete(config, &name).await,
            Command::Repo(RepoCommand::Fork { source, target }) => {
                repo_fork(config, &source, &target).await
            }
            Command::Repo(RepoCommand::List) => repo_list(config).await,
            Command::Check => check(config).await,
            Command::Token(TokenCommand::Create {
                name,
                admin,
                repos,
                expires_in_days,
            }) => token_create(config, &name, admin, &repos, expires_in_days).await,
            Command::Token(TokenCommand::List) => token_list(config).await,
            Command::Token(TokenCommand::Revoke { id }) => token_revoke(config, &id).await,
            Command::Gc { repo } => gc(config, repo.as_deref()).await,
            Command::Fsck { repo } => fsck(config, repo.as_deref()).await,
            Command::Migrate(args) => migrate::run(config, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gitclaw: {}", causes(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `err` and its causes on one line, each said once: many errors quote their
/// cause in their own message already.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        next = cause.source();
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    if config.admin_token.is_none() && !config.listen.ip().is_loopback() && !config.allow_anonymous
    {
        anyhow::bail!(
            "GITCLAW_LISTEN: refusing to serve {} without authentication; set GITCLAW_ADMIN_TOKEN, or GITCLAW_ALLOW_ANONYMOUS=true to run open",
            config.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| {
            anyhow::anyhow!("GITCLAW_LISTEN: cannot listen on {}: {err}", config.listen)
        })?;
    // Port 0 asks for any free port: from here on the address is the one bound
    // (in clone URLs, and in the "gitclaw is serving" line that tests read).
    config.listen = listener.local_addr()?;
    let metrics_listener = match config.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|err| {
                    anyhow::anyhow!("GITCLAW_METRICS_LISTEN: cannot listen on {address}: {err}")
                })?;
            config.metrics_listen = Some(listener.local_addr()?);
            Some(listener)
        }
        None => None,
    };
    let state = AppState::open(config.clone()).await?;
    if let Some(listener) = metrics_listener {
        let scheme = if config.metrics_tls { "https" } else { "http" };
        tracing::info!(listen = %listener.local_addr()?, scheme, "metrics are served");
        crate::serve_metrics(listener, &state);
    }
    if config.admin_token.is_none() {
        tracing::warn!(
            "no authentication is configured (GITCLAW_ADMIN_TOKEN is unset): anyone who can reach {} may read and push",
            config.listen
        );
    }
    tracing::info!(
        listen = %listener.local_addr()?,
        scheme = state.config.scheme(),
        data_dir = %config.data_dir.display(),
        database = %state.meta.backend_name(),
        store = %state.store.name(),
        "gitclaw is serving"
    );
    Ok(crate::serve(listener, state, crate::shutdown_signal()).await?)
}

fn split_name(full: &str) -> anyhow::Result<(&str, &str)> {
    full.split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| anyhow::anyhow!("expected OWNER/NAME, got '{full}'"))
}

async fn repo_create(config: Config, full: &str, private: bool) -> anyhow::Result<()> {
    let (owner, name) = split_name(full)?;
    let state = AppState::open(config).await?;
    let repo = repos::create_repo(&state, owner, name, private, "cli").await?;
    println!("created {}/{} (id {})", repo.owner, repo.name, repo.id);
    println!("{}", repos::clone_url(&state.config, &repo));
    Ok(())
}

/// Reach every service the configuration names; print one line per problem.
async fn check(config: Config) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    match gitclaw_metadata::Metadata::connect(&config.database_url).await {
        Ok(meta) => {
            if let Err(err) = meta.ping().await {
                problems.push(format!("DATABASE_URL: {err}"));
            } else {
                println!("database: ok ({})", meta.backend_name());
            }
        }
        Err(err) => problems.push(format!("DATABASE_URL: {err}")),
    }
    match crate::app::open_store(&config, &Default::default()).await {
        Ok(store) => println!("object store: ok ({})", store.name()),
        Err(err) => problems.push(causes(&err)),
    }
    if let Some(redis) = &config.redis {
        // The server goes on without Redis; a check says why it would.
        match redis.reach(Duration::from_secs(5)).await {
            Ok(()) => println!("shared cache: ok (Redis)"),
            Err(err) => problems.push(format!("REDIS_URL: {err}")),
        }
    }
    if problems.is_empty() {
        println!("configuration ok");
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("gitclaw: {problem}");
        }
        Err(anyhow::anyhow!("{} problem(s) found", problems.len()))
    }
}

/// The repository `only` names, or every repository.
async fn repos_named(
    state: &AppState,
    only: Option<&str>,
) -> anyhow::Result<Vec<gitclaw_metadata::Repo>> {
    Ok(match only {
        Some(full) => {
            let (owner, name) = split_name(full)?;
            vec![state
                .meta
                .get_repo(owner, name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("repository not found: {full}"))?]
        }
        None => {
            let mut all = Vec::new();
            let mut after: Option<(String, String)> = None;
            loop {
                let page = state
                    .meta
                    .list_repos(after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())), 500)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some((last.owner.clone(), last.name.clone()));
                all.extend(page);
            }
            all
        }
    })
}

async fn gc(config: Config, only: Option<&str>) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let repos = repos_named(&state, only).await?;
    for repo in &repos {
        let outcome = match crate::service::gc::gc_repo(&state, repo).await {
            Ok(outcome) => outcome,
            Err(crate::error::GitError::Conflict(why)) => {
                println!("{}/{}: skipped: {why}", repo.owner, repo.name);
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let unreachable = match outcome.cruft_pack {
            Some(cruft) => format!(", unreachable objects in pack-{cruft}"),
            None => String::new(),
        };
        match outcome.new_pack {
            Some(pack) => println!(
                "{}/{}: {} packs and {} loose objects merged into pack-{pack}{unreachable} ({} objects)",
                repo.owner, repo.name, outcome.packs_before, outcome.loose_before, outcome.objects
            ),
            None if outcome.closure_recorded => println!(
                "{}/{}: nothing to compact; its pack holds exactly what the refs reach (recorded for clones)",
                repo.owner, repo.name
            ),
            None => println!("{}/{}: nothing to compact", repo.owner, repo.name),
        }
        if outcome.swept.unrecorded > 0 {
            println!(
                "{}/{}: {} stored keys no row records; deleted {} of them ({} bytes) older than the grace period",
                repo.owner,
                repo.name,
                outcome.swept.unrecorded,
                outcome.swept.deleted,
                outcome.swept.deleted_bytes
            );
        }
    }
    let deleted = crate::service::sweep::run_due_deletions(&state).await?;
    println!("deleted {deleted} replaced keys past their grace period");
    Ok(())
}

async fn find(state: &AppState, full: &str) -> anyhow::Result<gitclaw_metadata::Repo> {
    let (owner, name) = split_name(full)?;
    Ok(repos::find_repo(state, owner, name).await?)
}

async fn repo_delete(config: Config, full: &str) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let repo = find(&state, full).await?;
    repos::delete_repo(&state, &repo, "cli").await?;
    println!("deleted {full}");
    Ok(())
}

async fn repo_fork(config: Config, source: &str, target: &str) -> anyhow::Result<()> {
    let (owner, name) = split_name(target)?;
    repos::validate(owner, name)?;
    let state = AppState::open(config).await?;
    let repo = find(&state, source).await?;
    let fork = repos::fork_repo(&state, &repo, owner, name, "cli").await?;
    println!(
        "forked {source} to {}/{} (id {})",
        fork.owner, fork.name, fork.id
    );
    println!("{}", repos::clone_url(&state.config, &fork));
    Ok(())
}

async fn repo_list(config: Config) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let mut after: Option<(String, String)> = None;
    loop {
        let page = state
            .meta
            .list_repos(after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.owner.clone(), last.name.clone()));
        for repo in &page {
            println!(
                "{}/{}\t{}\t{}",
                repo.owner,
                repo.name,
                if repo.private { "private" } else { "public" },
                repo.id
            );
        }
    }
    Ok(())
}

async fn token_create(
    config: Config,
    name: &str,
    admin: bool,
    repos: &[String],
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let mut scopes = Vec::with_capacity(repos.len());
    for spec in repos {
        let (repo, access) = spec.rsplit_once(':').ok_or_else(|| {
            anyhow::anyhow!(
                "--repo expects OWNER/NAME:read, OWNER/NAME:write or OWNER/NAME:admin, got '{spec}'"
            )
        })?;
        scopes.push((repo.to_string(), access.to_string()));
    }
    let expires_at = tokens::token_expiry(expires_in_days, None)
        .map_err(|err| anyhow::anyhow!("--expires-in-days: {err}"))?;
    let state = AppState::open(config).await?;
    let minted = tokens::mint_token(&state, name, admin, &scopes, expires_at).await?;
    let token = &minted.token;
    println!(
        "created token '{}' (id {}{}{})",
        token.name,
        token.id,
        if token.admin { ", admin" } else { "" },
        match token.expires_at {
            Some(at) => format!(", expires {}", crate::time::rfc3339(at)),
            None => String::new(),
        }
    );
    println!("{}", minted.secret);
    Ok(())
}

async fn token_list(config: Config) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let tokens = state.meta.list_tokens().await?;
    println!("ID\tNAME\tACCESS\tCREATED\tEXPIRES\tLAST USED");
    for token in tokens {
        let access = if token.admin {
            "admin".to_string()
        } else if token.scopes.is_empty() {
            "-".to_string()
        } else {
            token
                .scopes
                .iter()
                .map(|s| format!("{}/{}:{}", s.owner, s.name, s.access.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            token.id,
            token.name,
            access,
            crate::time::rfc3339(token.created_at),
            token
                .expires_at
                .map_or_else(|| "never".to_string(), crate::time::rfc3339),
            token
                .last_used_at
                .map_or_else(|| "never".to_string(), crate::time::rfc3339),
        );
    }
    Ok(())
}

async fn token_revoke(config: Config, id: &str) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    tokens::revoke_token(&state, id).await?;
    println!("revoked token {id}");
    Ok(())
}

async fn fsck(config: Config, only: Option<&str>) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let repos = repos_named(&state, only).await?;
    let mut broken = 0usize;
    for repo in &repos {
        let name = format!("{}/{}", repo.owner, repo.name);
        let db = match state.object_db(repo).await {
            Ok(db) => db,
            Err(err) => {
                broken += 1;
                println!("{name}: its objects cannot be opened: {err}");
                continue;
            }
        };
        let graph_problems = stored_graph_problems(&state, repo).await?;
        let refs: Vec<(String, gitclaw_pack::ObjectId)> = state
            .meta
            .list_refs(&repo.id)
            .await?
            .into_iter()
            .map(|r| (r.name, r.oid))
            .collect();
        let packs = db.packs().len();
        let (findings, reached, ref_problems) = crate::metrics::spawn_blocking(move || {
            let tips: Vec<gitclaw_pack::ObjectId> = refs.iter().map(|r| r.1).collect();
            let (findings, reached) = gitclaw_pack::verify::verify_repository(&db, &tips)?;
            let mut reader = db.reader();
            let ref_problems = crate::service::push::checks::stored_ref_problems(&refs, |id| {
                Ok(reader.header(id)?.map(|(kind, _)| kind))
            })?;
            Ok::<_, gitclaw_pack::PackError>((findings, reached, ref_problems))
        })
        .await??;
        let ref_problems = [graph_problems, ref_problems].concat();
        if findings.is_clean() && ref_problems.is_empty() {
            println!(
                "{name}: ok: {} objects in {packs} packs and loose, each hashed; the {reached} objects the refs reach are all there; the refs' names are sound",
                findings.objects
            );
            continue;
        }
        broken += 1;
        for problem in findings.problems.iter().chain(&ref_problems) {
            println!("{name}: {problem}");
        }
        let unlisted = findings.problem_count - findings.problems.len() as u64;
        if unlisted > 0 {
            println!("{name}: … and {unlisted} more problems");
        }
    }
    if broken > 0 {
        anyhow::bail!("{broken} of {} repositories have problems", repos.len());
    }
    Ok(())
}

/// Each stored commit-graph of `repo`'s packs downloaded whole and checked
/// against its checksum and structure (a request reads only the parts it
/// needs, so damage elsewhere would otherwise go unseen until read).
async fn stored_graph_problems(
    state: &AppState,
    repo: &gitclaw_metadata::Repo,
) -> anyhow::Result<Vec<String>> {
    let repo_id = gitclaw_storage::RepoId::new(&repo.id)?;
    let mut problems = Vec::new();
    for pack in state.meta.list_packs(&repo.id).await? {
        let Some(len) = pack.graph_bytes else {
            continue;
        };
        let work = tempfile::tempdir_in(&state.scratch.dir)?;
        let path = work.path().join("pack.graph");
        let key = gitclaw_storage::ObjectKey::pack_graph(&repo_id, &pack.pack_hash);
        if let Err(err) = state.store.get_to_file(&key, &path, Some(len)).await {
            problems.push(format!("pack-{}: commit-graph: {err}", pack.pack_hash));
            continue;
        }
        let local = path.display().to_string();
        let opened = crate::metrics::spawn_blocking(move || {
            gitclaw_pack::commit_graph::CommitGraph::open(&path).map(|_| ())
        })
        .await?;
        if let Err(err) = opened {
            // Named by its key in the store, not the copy's path.
            let said = err.to_string().replace(&local, key.as_str());
            problems.push(format!("pack-{}: {said}", pack.pack_hash));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("DATABASE_URL: {0}")]
        struct Quoting(#[source] std::io::Error);
        let err =
            anyhow::Error::new(Quoting(std::io::Error::other("TLS required"))).context("starting");
        assert_eq!(causes(err.as_ref()), "starting: DATABASE_URL: TLS required");
        let err = anyhow::Error::new(std::io::Error::other("refused")).context("reading");
        assert_eq!(causes(err.as_ref()), "reading: refused");
    }
}
