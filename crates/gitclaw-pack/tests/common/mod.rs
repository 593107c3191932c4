//! Shared by the pack engine's tests: git, run as the oracle, with a fixed
//! identity and no user or system configuration.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

/// Run git in `dir`; returns stdout, panics with stderr when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "C O Mitter")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Run git in `dir` with `input` on its stdin: whether it succeeded, its
/// stdout and its stderr.
#[allow(dead_code)] // not every test crate feeds git its input
pub fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("git finishes");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fetch's pack of what `outcome` lists, thin (leaning on what the client
/// has) or not.
#[allow(dead_code)] // not every test crate writes fetch packs
pub fn write_fetch_pack(
    db: &gitclaw_pack::odb::ObjectDb,
    outcome: &gitclaw_pack::walk::WalkOutcome,
    thin: bool,
) -> (Vec<u8>, gitclaw_pack::writer::WriteStats) {
    let mut pack = Vec::new();
    let options = gitclaw_pack::writer::WriteOptions {
        thin,
        ..Default::default()
    };
    let stats = gitclaw_pack::writer::write_pack(
        db,
        &outcome.objects,
        Some(outcome.client_has()),
        &options,
        &mut pack,
        &mut |_, _, _| {},
    )
    .unwrap();
    (pack, stats)
}
