//! Shared by the pack engine's tests: git, run as the oracle, with a fixed
//! identity and no user or system configuration.

use std::{
    io::Write,
    path::{Path, PathBuf},
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

/// A new repository (branch `main`) in a temporary directory: the directory
/// (kept while it lives) and the repository's path.
#[allow(dead_code)] // not every test crate makes repositories this way
pub fn new_repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    (tmp, repo)
}

/// Complete thin `pack` in the client repository `client` as `git fetch`
/// does (`index-pack --fix-thin`, strict), point `branch` at `tip`, and check
/// that everything the client's refs reach is there.
#[allow(dead_code)] // not every test crate completes thin packs
pub fn fix_thin_and_check(client: &Path, pack: &[u8], branch: &str, tip: &str) {
    let (ok, _, err) = git_stdin(
        client,
        &["index-pack", "--strict", "--stdin", "--fix-thin"],
        pack,
    );
    assert!(ok, "{err}");
    git(
        client,
        &["update-ref", &format!("refs/heads/{branch}"), tip],
    );
    git(client, &["fsck", "--connectivity-only", "--no-dangling"]);
}

/// A bare copy of `repo` at `client` made as `git clone` over a network makes
/// it (no hardlinks), of `branch` only when given: a client to fetch into.
#[allow(dead_code)] // not every test crate makes clients
pub fn client_copy(repo: &Path, client: &Path, branch: Option<&str>) {
    let mut args = vec!["clone", "-q", "--bare", "--no-local"];
    if let Some(branch) = branch {
        args.extend(["--single-branch", "--branch", branch]);
    }
    args.extend([repo.to_str().unwrap(), client.to_str().unwrap()]);
    git(client.parent().unwrap(), &args);
}

/// A [`client_copy`] of `repo` with `main` set back to `commit` and what only
/// later commits held pruned: a client that fetched `main` when it was there.
#[allow(dead_code)] // not every test crate makes clients
pub fn client_at(repo: &Path, client: &Path, commit: &str) {
    client_copy(repo, client, None);
    git(client, &["update-ref", "refs/heads/main", commit]);
    git(client, &["gc", "-q", "--prune=now"]);
}

/// `git diff --raw -z --no-abbrev` output, a line per change.
#[allow(dead_code)] // not every test crate diffs trees
pub fn git_raw_lines(listed: &[u8]) -> Vec<String> {
    let text = String::from_utf8(listed.to_vec()).unwrap();
    let mut fields = text.split_terminator('\0');
    let mut lines = Vec::new();
    while let Some(meta) = fields.next() {
        let meta = meta.trim_start_matches(':');
        let status = meta.split(' ').nth(4).unwrap();
        let mut line = format!("{meta} {}", fields.next().unwrap());
        if status.starts_with('R') || status.starts_with('C') {
            line.push(' ');
            line.push_str(fields.next().unwrap());
        }
        lines.push(line);
    }
    lines
}

/// Changes as [`git_raw_lines`] shows them.
#[allow(dead_code)] // not every test crate diffs trees
pub fn raw_lines(changes: &[gitclaw_pack::files::Change]) -> Vec<String> {
    let null = gix_hash::ObjectId::null(gix_hash::Kind::Sha1);
    changes
        .iter()
        .map(|c| {
            let side = |e: Option<(gix_object::tree::EntryKind, gix_hash::ObjectId)>| match e {
                Some((kind, id)) => (gitclaw_pack::files::mode_of(kind), id),
                None => ("000000", null),
            };
            let ((om, oi), (nm, ni)) = (side(c.old), side(c.new));
            let path = String::from_utf8(c.path.clone()).unwrap();
            match &c.renamed_from {
                Some(from) => format!(
                    "{om} {nm} {oi} {ni} R{:03} {} {path}",
                    from.similarity(),
                    String::from_utf8(from.path.clone()).unwrap()
                ),
                None => format!("{om} {nm} {oi} {ni} {} {path}", c.kind.letter()),
            }
        })
        .collect()
}
