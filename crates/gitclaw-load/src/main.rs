//! The `gitclaw-load` command line: options in, a run of `gitclaw_load::run`,
//! the report out. Exit status 0 when every run succeeded, 1 when some failed
//! (the report says which and why), 2 when the run could not start.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, ValueEnum};
use gitclaw_load::{config::parse_duration, Config, Credentials, Mix, Stop, Verify};

/// Load generator for Git smart-HTTP servers (GitClaw, git http-backend, …):
/// weighted clone, fetch, ls-refs and push scenarios at a set concurrency,
/// with every answer checked.
#[derive(Debug, Parser)]
#[command(name = "gitclaw-load", version)]
struct Args {
    /// The repository, as git clones it: http(s)://host:port/owner/repo.git
    #[arg(long, env = "GITCLAW_LOAD_URL")]
    url: String,

    /// Scenarios and their weights: ls-refs, full, shallow, blob-none,
    /// incremental, by-sha, push (a name alone weighs 1)
    #[arg(long, default_value = "ls-refs=4,shallow=4,incremental=2,full=1")]
    mix: String,

    /// Scenario runs under way at once
    #[arg(long, short = 'c', default_value_t = 8)]
    concurrency: usize,

    /// Start runs for this long (30s, 2m, 500ms)
    #[arg(long, conflicts_with = "requests")]
    duration: Option<String>,

    /// Stop after this many scenario runs in all, instead of after a time
    #[arg(long, short = 'n')]
    requests: Option<u64>,

    /// Longest a scenario run may take, all its requests together
    #[arg(long, default_value = "60s")]
    timeout: String,

    /// Access token, sent as the HTTP Basic password
    #[arg(long, env = "GITCLAW_LOAD_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// User name sent with --token
    #[arg(long, default_value = "x-access-token")]
    user: String,

    /// How each received pack is checked: `full` indexes it completely (every
    /// object inflated, hashed and parsed); `light` checks header, count and
    /// checksum only, leaving more CPU to a server on the same machine
    #[arg(long, value_enum, default_value_t = VerifyArg::Full)]
    verify: VerifyArg,

    /// Commits the incremental fetcher is behind the default branch's tip, and
    /// how far back from it the by-sha commit is
    #[arg(long, default_value_t = 10)]
    behind: u32,

    /// Size in bytes of the random file each push commits
    #[arg(long, default_value_t = 1024)]
    push_bytes: usize,

    /// Pushed branches are refs/heads/<PREFIX><run>-w<worker>-<n>
    #[arg(long, default_value = "load/")]
    push_prefix: String,

    /// Delete the branches pushed once the run ends
    #[arg(long)]
    cleanup: bool,

    /// Where received packs are indexed while checked (default: the system's
    /// temporary directory)
    #[arg(long)]
    tmp_dir: Option<PathBuf>,

    /// Also write the report as JSON to this file (`-`: standard output)
    #[arg(long)]
    json: Option<PathBuf>,

    /// The report on standard output: a table, or JSON
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// No progress lines on standard error
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerifyArg {
    Full,
    Light,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn config(args: Args) -> Result<(Config, Option<PathBuf>, Format), String> {
    let mix: Mix = args.mix.parse().map_err(|e| format!("--mix: {e}"))?;
    let mut config = Config::new(args.url, mix);
    config.concurrency = args.concurrency;
    config.stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::Runs(n),
        (None, Some(d)) => Stop::After(parse_duration(&d).map_err(|e| format!("--duration: {e}"))?),
        (None, None) => config.stop,
    };
    config.timeout = parse_duration(&args.timeout).map_err(|e| format!("--timeout: {e}"))?;
    config.credentials = args.token.map(|password| Credentials {
        user: args.user,
        password,
    });
    config.verify = match args.verify {
        VerifyArg::Full => Verify::Full,
        VerifyArg::Light => Verify::Light,
    };
    config.behind = args.behind;
    config.push_bytes = args.push_bytes;
    config.push_prefix = args.push_prefix;
    config.cleanup = args.cleanup;
    config.tmp_dir = args.tmp_dir;
    config.progress = !args.quiet;
    Ok((config, args.json, args.format))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (config, json_path, format) = match config(args) {
        Ok(parts) => parts,
        Err(message) => {
            eprintln!("gitclaw-load: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("gitclaw-load: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(gitclaw_load::run(config)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("gitclaw-load: {err}");
            return ExitCode::from(2);
        }
    };
    let json = match serde_json::to_string_pretty(&report) {
        Ok(json) => json,
        Err(err) => {
            eprintln!("gitclaw-load: cannot write the report: {err}");
            return ExitCode::from(2);
        }
    };
    match format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{json}"),
    }
    if let Some(path) = json_path {
        let written = if path.as_os_str() == "-" {
            println!("{json}");
            Ok(())
        } else {
            std::fs::write(&path, format!("{json}\n"))
        };
        if let Err(err) = written {
            eprintln!("gitclaw-load: writing {}: {err}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.errors() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
