//! The `gitclaw` binary as a user runs it: start, health, create, clone, stop.

mod common;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

fn gitclaw() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitclaw"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("GITCLAW_CONFIG")
        .env("RUST_LOG", "info");
    cmd
}

/// A process killed when the test ends, passed or failed.
struct KilledAtTheEnd(std::process::Child);

impl Drop for KilledAtTheEnd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn configuration_errors_are_one_line_naming_the_variable() {
    let out = gitclaw()
        .env("GITCLAW_LISTEN", "not-an-address")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("GITCLAW_LISTEN"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_former_setting_name_still_works_and_is_warned_about_once_naming_the_new_one() {
    let data = tempfile::tempdir().unwrap();
    let out = gitclaw()
        .env("GITCLAW_DATA_DIR", data.path())
        .env("GITCLAW_PACK_CACHE_BYTES", "0")
        .arg("check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("GITCLAW_PACK_CACHE_BYTES is deprecated")
            && warnings[0].contains("GITCLAW_RESPONSE_CACHE_BYTES"),
        "{stderr}"
    );
}

#[test]
fn check_reaches_s3_and_postgres_and_names_each_problem() {
    let data = tempfile::tempdir().unwrap();
    let bucket = fresh_bucket();
    let mut cmd = gitclaw();
    cmd.env("GITCLAW_DATA_DIR", data.path())
        .env("DATABASE_URL", postgres_database());
    for (k, v) in s3_process_env(&bucket) {
        cmd.env(k, v);
    }
    let out = cmd.arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("database: ok (postgres)"), "{stdout}");
    assert!(stdout.contains("object store: ok (s3)"), "{stdout}");

    // Without S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY the AWS default chain is used:
    // here its environment source.
    let mut cmd = gitclaw();
    cmd.env("GITCLAW_DATA_DIR", data.path());
    for (k, v) in s3_process_env(&bucket) {
        match k {
            "S3_ACCESS_KEY_ID" => cmd.env("AWS_ACCESS_KEY_ID", v),
            "S3_SECRET_ACCESS_KEY" => cmd.env("AWS_SECRET_ACCESS_KEY", v),
            _ => cmd.env(k, v),
        };
    }
    let out = cmd
        .env("AWS_CONFIG_FILE", data.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data.path().join("none"))
        .arg("check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "default credential chain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("object store: ok (s3)"));

    // A call slower than S3_SLOW_OP_MS logs a warning naming the call and its duration.
    let mut cmd = gitclaw();
    cmd.env("GITCLAW_DATA_DIR", data.path())
        .env("S3_SLOW_OP_MS", "1");
    let proxy = common::proxy::FaultProxy::start(&s3_env().endpoint);
    proxy.inject(
        common::proxy::Fault::Delay(Duration::from_millis(50)),
        &["HEAD"],
        0,
        None,
    );
    for (k, v) in s3_process_env(&bucket) {
        cmd.env(k, v);
    }
    cmd.env("S3_ENDPOINT", proxy.endpoint());
    let out = cmd.arg("check").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("slow S3 call: HeadBucket"))
        .unwrap_or_else(|| panic!("no slow-call warning: {stderr}"));
    let ms: u64 = warning
        .split("duration_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the warning gives the duration: {warning}"));
    assert!(ms >= 50, "{warning}");

    // Every configuration problem on its own line, naming its variable.
    let out = gitclaw()
        .env("GITCLAW_DATA_DIR", data.path())
        .env("S3_BUCKET", "Not_A_Bucket")
        .env("S3_ENDPOINT", "localhost:3900")
        .env("S3_ACCESS_KEY_ID", "GK1")
        .env("S3_CA_CERT", data.path().join("missing.pem"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    for variable in [
        "S3_BUCKET",
        "S3_REGION",
        "S3_ENDPOINT",
        "S3_SECRET_ACCESS_KEY",
        "S3_CA_CERT",
    ] {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains(&format!("error: {variable}:")))
                .count(),
            1,
            "one line names {variable}: {stderr}"
        );
    }

    // Valid settings but the store refuses the key: one line, non-zero exit.
    let mut cmd = gitclaw();
    cmd.env("GITCLAW_DATA_DIR", data.path());
    for (k, v) in s3_process_env(&bucket) {
        cmd.env(k, v);
    }
    cmd.env("S3_SECRET_ACCESS_KEY", "0".repeat(64))
        .env("S3_MAX_RETRIES", "0");
    let out = cmd.arg("check").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("S3_BUCKET") && l.contains("access denied")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn serve_create_push_clone_and_stop_on_sigterm() {
    let data = tempfile::tempdir().unwrap();

    // `repo create` works before the server runs (same data dir), and names the
    // repository by the address the server is configured with.
    let out = gitclaw()
        .env("GITCLAW_DATA_DIR", data.path())
        .env("GITCLAW_LISTEN", "127.0.0.1:8080")
        .args(["repo", "create", "alice/cli"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed = stdout.lines().last().unwrap().trim().to_string();
    assert_eq!(printed, "http://127.0.0.1:8080/alice/cli.git");

    let dup = gitclaw()
        .env("GITCLAW_DATA_DIR", data.path())
        .args(["repo", "create", "alice/cli"])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    // On port 0 the server takes a free port and says which.
    let mut server = KilledAtTheEnd(
        gitclaw()
            .env("GITCLAW_DATA_DIR", data.path())
            .env("GITCLAW_LISTEN", "127.0.0.1:0")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = ServerLog::follow(&mut server.0);
    let addr = log
        .listen_addr(Duration::from_secs(30))
        .unwrap_or_else(|err| panic!("gitclaw serve: {err}"));
    assert_ne!(addr.port(), 0, "the log names the port bound, not 0");
    let (status, body) = http(addr, "GET", "/healthz", &[], b"");
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let url = format!("http://{addr}/alice/cli.git");
    let (status, body) = http(addr, "GET", "/api/v1/repos/alice/cli", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let repo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(repo["clone_url"], url, "clone URLs name the address bound");

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    git(&src, &["push", "-q", &url, "main"]);
    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert_eq!(
        git(&clone, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "main"])
    );

    // SIGTERM: the server stops cleanly.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut status = None;
    wait_until(
        Duration::from_secs(20),
        "the server to stop on SIGTERM",
        || {
            status = server.0.try_wait().unwrap();
            status.is_some()
        },
    );
    let status = status.unwrap();
    assert!(status.success(), "exit status {status:?}");
    let logs = log.until_closed(Duration::from_secs(10));
    assert!(
        logs.iter().any(|l| l.contains("no authentication")),
        "the open server says so: {logs:?}"
    );
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:?}");
}

#[test]
fn gc_on_the_command_line_compacts_a_repository_the_server_is_serving() {
    let quiet_gc = [
        ("GITCLAW_GC_LOOSE_THRESHOLD", "0".to_string()),
        ("GITCLAW_GC_PACK_THRESHOLD", "0".to_string()),
        ("GITCLAW_GC_GRACE_SECS", "0".to_string()),
    ];
    let server = ServerProcess::start(&quiet_gc);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    let url = server.create_repo("gail", "compact");
    push_everything(&src, &url);
    // Small pushes are stored as loose objects, a larger one as a second pack.
    for i in 0..3 {
        commit_file(&src, "small.txt", &format!("small {i}\n"), "small");
        git(&src, &["push", "-q", &url, "main"]);
    }
    for i in 0..15 {
        std::fs::write(src.join(format!("many-{i}.txt")), format!("many {i}\n")).unwrap();
    }
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "many"]);
    git(&src, &["push", "-q", &url, "main"]);
    let stats = || -> serde_json::Value {
        let (status, body) = http(
            server.addr,
            "GET",
            "/api/v1/repos/gail/compact/stats",
            &[],
            b"",
        );
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    };
    let before = stats();
    assert!(before["packs"].as_u64().unwrap() >= 2, "{before}");
    assert!(before["loose_objects"].as_u64().unwrap() >= 9, "{before}");

    // The same configuration as the server, while it runs.
    let mut cmd = gitclaw();
    cmd.env("GITCLAW_DATA_DIR", server.data.path());
    for (k, v) in &quiet_gc {
        cmd.env(k, v);
    }
    let out = cmd.args(["gc", "gail/compact"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("gail/compact: "), "{stdout}");
    assert!(stdout.contains("merged into pack-"), "{stdout}");

    let after = stats();
    assert_eq!(after["loose_objects"].as_u64(), Some(0), "{after}");
    assert!(after["packs"].as_u64().unwrap() <= 2, "{after}");
    // The running server serves the compacted repository whole.
    let clone = work.path().join("clone");
    git(
        work.path(),
        &["clone", "-q", "--mirror", &url, clone.to_str().unwrap()],
    );
    git(&clone, &["fsck", "--strict"]);
    let mut expected = refs_of(&src, "refs/heads/");
    expected.extend(refs_of(&src, "refs/tags/"));
    expected.sort();
    assert_eq!(refs_of(&clone, "refs/"), expected);
}
