//! The load harness against a real GitClaw: every scenario, pushes included,
//! on a private repository with a token, without one error; the pushed
//! branches land (and go again with clean-up); without credentials it stops
//! before the first run, saying why. And against C git's `git http-backend`,
//! the reference: the same scenarios without one error there too.

mod common;

use std::time::Duration;

use common::{http_backend::HttpBackend, *};
use gitclaw_load::{Config, Credentials, ErrorKind, Mix, SetupError, Stop};
use serde_json::Value;

const ADMIN: &str = "admin-secret-0123456789";

fn api(server: &Server, path: &str, body: &str) -> Value {
    let auth = format!("Bearer {ADMIN}");
    let (status, bytes) = http(
        server.addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 201, "{path}: {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).expect("JSON answer")
}

/// A server with authentication on and the fixture pushed to the private
/// repository `load/private`; returns the server, its work dir, the URL and a
/// write token for that repository alone.
fn private_fixture() -> (Server, tempfile::TempDir, String, String) {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    api(
        &server,
        "/api/v1/repos",
        r#"{"owner":"load","name":"private","private":true}"#,
    );
    let token = api(
        &server,
        "/api/v1/tokens",
        r#"{"name":"load","repos":[{"repo":"load/private","access":"write"}]}"#,
    )["token"]
        .as_str()
        .expect("token")
        .to_string();
    let work = tempfile::tempdir().expect("temp dir");
    let src = work.path().join("src");
    fixture_repo(&src, 30);
    let url = format!("{}/load/private.git", server.url);
    push_everything(
        &src,
        &url.replacen("http://", &format!("http://ci:{ADMIN}@"), 1),
    );
    (server, work, url, token)
}

fn harness(config: Config) -> Result<gitclaw_load::Report, SetupError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(gitclaw_load::run(config))
}

fn config(url: &str, mix: &str, token: Option<&str>) -> Config {
    let mut config = Config::new(url, mix.parse::<Mix>().expect("mix"));
    config.concurrency = 4;
    config.stop = Stop::After(Duration::from_secs(4));
    config.behind = 5;
    config.credentials = token.map(|t| Credentials {
        user: "ci".into(),
        password: t.into(),
    });
    config
}

#[test]
fn every_scenario_runs_without_errors_and_the_pushes_land() {
    let (server, _work, url, token) = private_fixture();
    let all = "ls-refs=2,full=1,shallow=2,blob-none=1,incremental=2,by-sha=2,push=2";
    let report = harness(config(&url, all, Some(&token))).expect("the run starts");
    let text = report.to_text();
    assert_eq!(report.errors(), 0, "no run fails:\n{text}");
    for scenario in [
        "ls-refs",
        "full",
        "shallow",
        "blob-none",
        "incremental",
        "by-sha",
        "push",
    ] {
        let line = report
            .scenario(scenario)
            .unwrap_or_else(|| panic!("{scenario} ran:\n{text}"));
        assert!(line.ok > 0, "{scenario} succeeded at least once:\n{text}");
        assert!(line.latency.p99_ms > 0.0, "{scenario} was timed:\n{text}");
        assert!(line.http_requests >= 2 * line.ok, "{text}");
    }
    assert!(
        report.scenario("full").unwrap().bytes_received > 6 << 20,
        "{text}"
    );
    assert!(report.scenario("push").unwrap().bytes_sent > 0, "{text}");

    // Every push reported ok is a branch on the server, at the commit pushed.
    let stored = server.stored_refs("load", "private");
    let pushes = report.scenario("push").unwrap().ok;
    assert_eq!(report.pushed_refs.len() as u64, pushes);
    for branch in &report.pushed_refs {
        assert!(
            branch.name.starts_with("refs/heads/load/"),
            "{}",
            branch.name
        );
        let line = format!("{} {}", branch.commit, branch.name);
        assert!(stored.contains(&line), "{line} is stored: {stored:#?}");
    }

    // A second run cleans up after itself, and leaves the first run's branches.
    let mut again = config(&url, "push=1,shallow=1", Some(&token));
    again.stop = Stop::Runs(6);
    again.cleanup = true;
    let second = harness(again).expect("the second run starts");
    assert_eq!(second.errors(), 0, "{}", second.to_text());
    assert!(second.cleaned_up);
    let stored = server.stored_refs("load", "private");
    for branch in &second.pushed_refs {
        assert!(
            !stored.iter().any(|line| line.ends_with(&branch.name)),
            "{} was deleted",
            branch.name
        );
    }
    for branch in &report.pushed_refs {
        assert!(stored.contains(&format!("{} {}", branch.commit, branch.name)));
    }
}

#[test]
fn without_credentials_a_private_repository_stops_the_run_before_it_starts() {
    let (_server, _work, url, _token) = private_fixture();
    match harness(config(&url, "shallow", None)) {
        Err(SetupError::Server { source, .. }) => {
            assert_eq!(source.kind, ErrorKind::HttpStatus(401), "{source}")
        }
        other => panic!("expected a 401 before the first run, got {other:?}"),
    }
}

#[test]
fn every_scenario_runs_without_errors_against_git_http_backend() {
    let work = tempfile::tempdir().expect("temp dir");
    let src = work.path().join("src");
    fixture_repo(&src, 30);
    let served = work.path().join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    let bare = served.join("repo.git");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    for (key, value) in [
        ("http.receivepack", "true"),
        ("uploadpack.allowFilter", "true"),
        ("uploadpack.allowReachableSHA1InWant", "true"),
    ] {
        git(&bare, &["config", key, value]);
    }
    let reference = HttpBackend::start(&served);
    let url = format!("http://127.0.0.1:{}/git/repo.git", reference.port);
    let all = "ls-refs=2,full=1,shallow=2,blob-none=1,incremental=2,by-sha=2,push=2";
    let mut run = config(&url, all, None);
    run.cleanup = true;
    let report = harness(run).expect("the run starts");
    let text = report.to_text();
    assert_eq!(report.errors(), 0, "no run fails:\n{text}");
    for line in &report.scenarios {
        assert!(
            line.ok > 0,
            "{} succeeded at least once:\n{text}",
            line.scenario
        );
    }
    assert_eq!(report.scenarios.len(), 7, "{text}");
    assert!(report.cleaned_up);
    assert!(
        refs_of(&bare, "refs/heads/load/").is_empty(),
        "branches deleted"
    );
}
