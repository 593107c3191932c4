//! Same requests, same answers: GitClaw against C git's `git http-backend` (under
//! lighttpd) serving the same repository, for the fetch shapes CI systems use.

mod common;

use std::path::Path;

use common::{http_backend::HttpBackend, *};

/// What a client ends up with: refs, shallow boundary, and objects present
/// (after `git fsck --strict` found nothing wrong).
fn client_state(dir: &Path) -> (String, String, Vec<String>) {
    git(dir, &["fsck", "--strict", "--no-dangling"]);
    let refs = git(dir, &["for-each-ref", "--format=%(objectname) %(refname)"]);
    let shallow = std::fs::read_to_string(dir.join("shallow"))
        .or_else(|_| std::fs::read_to_string(dir.join(".git/shallow")))
        .unwrap_or_default();
    let mut shallow_lines: Vec<&str> = shallow.lines().collect();
    shallow_lines.sort();
    let mut objects: Vec<String> = git(dir, &["rev-list", "--objects", "--all", "--missing=print"])
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    objects.sort();
    (refs, shallow_lines.join("\n"), objects)
}

#[test]
fn fetch_shapes_match_git_http_backend() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 12);
    let claw_url = server.create_repo("parity", "repo");
    git(
        &src,
        &[
            "push",
            "-q",
            &claw_url,
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ],
    );

    let served = work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            served.join("repo.git").to_str().unwrap(),
        ],
    );
    let bare = served.join("repo.git");
    git(&bare, &["config", "uploadpack.allowFilter", "true"]);
    git(
        &bare,
        &["config", "uploadpack.allowReachableSHA1InWant", "true"],
    );
    let reference = HttpBackend::start(&served);
    let git_url = format!("http://127.0.0.1:{}/git/repo.git", reference.port);

    let by_sha = git(&src, &["rev-parse", "main~4"]).trim().to_string();
    let since = git(&src, &["log", "-1", "--format=%ct", "main~5"])
        .trim()
        .to_string();
    let cases: Vec<(String, Vec<String>)> = vec![
        ("depth 1".into(), vec!["clone", "--bare", "--depth", "1"]),
        (
            "depth 3, all branches".into(),
            vec!["clone", "--bare", "--depth", "3", "--no-single-branch"],
        ),
        (
            "shallow-since".into(),
            vec!["clone", "--bare", &format!("--shallow-since=@{since}")],
        ),
        (
            "shallow-exclude".into(),
            vec!["clone", "--bare", "--shallow-exclude=v1.0"],
        ),
        (
            "blob:none".into(),
            vec!["clone", "--bare", "--filter=blob:none"],
        ),
        (
            "blob:limit".into(),
            vec!["clone", "--bare", "--filter=blob:limit=2k"],
        ),
        ("tree:0".into(), vec!["clone", "--bare", "--filter=tree:0"]),
        (
            "combine".into(),
            vec!["clone", "--bare", "--filter=combine:blob:limit=2k+tree:3"],
        ),
        (
            "object:type=blob".into(),
            vec!["clone", "--bare", "--filter=object:type=blob"],
        ),
        (
            "object:type=commit".into(),
            vec!["clone", "--bare", "--filter=object:type=commit"],
        ),
        (
            "object:type=tree, combined".into(),
            vec![
                "clone",
                "--bare",
                "--filter=combine:object:type=tree+tree:2",
            ],
        ),
        (
            // git asks for ofs-delta only when it would write offsets itself.
            "no ofs-delta".into(),
            vec!["-c", "repack.useDeltaBaseOffset=false", "clone", "--bare"],
        ),
        (
            "no ofs-delta, depth 2".into(),
            vec![
                "-c",
                "repack.useDeltaBaseOffset=false",
                "clone",
                "--bare",
                "--depth",
                "2",
            ],
        ),
    ]
    .into_iter()
    .map(|(name, args)| (name, args.into_iter().map(String::from).collect()))
    .collect();
    for v in ["0", "2"] {
        for (name, args) in &cases {
            let mut states = Vec::new();
            for (label, url) in [("git", &git_url), ("gitclaw", &claw_url)] {
                let dir = work
                    .path()
                    .join(format!("{label}-{v}-{}", name.replace([' ', ','], "_")));
                // Every pack is checked as it arrives (index-pack --strict).
                let mut full = vec![
                    "-c".to_string(),
                    format!("protocol.version={v}"),
                    "-c".to_string(),
                    "transfer.fsckObjects=true".to_string(),
                ];
                full.extend(args.iter().cloned());
                full.push(url.to_string());
                full.push(dir.to_str().unwrap().to_string());
                let full: Vec<&str> = full.iter().map(String::as_str).collect();
                git(work.path(), &full);
                states.push(client_state(&dir));
            }
            assert_eq!(
                states[0], states[1],
                "v{v} {name}: GitClaw and git http-backend disagree"
            );
        }
        // A CI checkout of a commit by SHA, then deepening it.
        let mut states = Vec::new();
        for (label, url) in [("git", &git_url), ("gitclaw", &claw_url)] {
            let dir = work.path().join(format!("{label}-{v}-sha"));
            std::fs::create_dir_all(&dir).unwrap();
            git(&dir, &["init", "-q", "--bare"]);
            git(
                &dir,
                &[
                    "-c",
                    &format!("protocol.version={v}"),
                    "fetch",
                    "-q",
                    "--depth=1",
                    url,
                    &by_sha,
                ],
            );
            git(&dir, &["update-ref", "refs/heads/ci", "FETCH_HEAD"]);
            git(
                &dir,
                &[
                    "-c",
                    &format!("protocol.version={v}"),
                    "fetch",
                    "-q",
                    "--deepen=2",
                    url,
                    &by_sha,
                ],
            );
            states.push(client_state(&dir));
        }
        assert_eq!(
            states[0], states[1],
            "v{v} by-SHA: GitClaw and git http-backend disagree"
        );
        // A shallow clone made whole again.
        let mut states = Vec::new();
        for (label, url) in [("git", &git_url), ("gitclaw", &claw_url)] {
            let dir = work.path().join(format!("{label}-{v}-unshallow"));
            let proto = format!("protocol.version={v}");
            git(
                work.path(),
                &[
                    "-c",
                    &proto,
                    "clone",
                    "-q",
                    "--depth",
                    "1",
                    url,
                    dir.to_str().unwrap(),
                ],
            );
            git(&dir, &["-c", &proto, "fetch", "-q", "--unshallow"]);
            assert!(!dir.join(".git/shallow").exists(), "{label}: still shallow");
            states.push(client_state(&dir));
        }
        assert_eq!(
            states[0], states[1],
            "v{v} unshallow: GitClaw and git http-backend disagree"
        );
    }
}
