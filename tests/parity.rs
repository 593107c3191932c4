//! Same requests, same answers: GitClaw against C git's `git http-backend` (under
//! lighttpd) serving the same repository, for the fetch shapes CI systems use.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
};

use common::*;

/// `git http-backend` behind lighttpd on a free port, serving `root/*.git`.
struct HttpBackend {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl HttpBackend {
    fn start(root: &Path) -> HttpBackend {
        // lighttpd cannot bind port 0 and say which port it got: it is given a
        // port found free a moment before, which someone else may take first.
        // Then it exits, and it gets another.
        let mut failures = Vec::new();
        for _ in 0..5 {
            match HttpBackend::start_on_a_free_port(root) {
                Ok(backend) => return backend,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("lighttpd did not start on any of 5 free ports: {failures:#?}");
    }

    /// lighttpd on a port that was free a moment ago; what it said if it exited.
    fn start_on_a_free_port(root: &Path) -> Result<HttpBackend, String> {
        let lighttpd = ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("lighttpd is installed (scripts/test.sh installs it)");
        let exec_path = String::from_utf8(
            Command::new("git")
                .arg("--exec-path")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let backend = PathBuf::from(exec_path.trim()).join("git-http-backend");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its `Server:` header tells this lighttpd from whatever else may answer on the port.
        let tag = format!("parity-{}", dir.path().display());
        let conf = dir.path().join("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server.document-root = "{root}"
server.port = {port}
server.bind = "127.0.0.1"
server.tag = "{tag}"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.errorlog = "{dir}/error.log"
alias.url = ("/git/" => "{backend}/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
"#,
                root = root.display(),
                dir = dir.path().display(),
                backend = backend.display(),
            ),
        )
        .unwrap();
        let child = Command::new(lighttpd)
            .arg("-D")
            .arg("-f")
            .arg(&conf)
            .spawn()
            .unwrap();
        let mut backend = HttpBackend {
            child,
            port,
            _dir: dir,
        };
        let mut exited = false;
        wait_until(
            std::time::Duration::from_secs(30),
            "lighttpd to answer on its port, or exit",
            || {
                exited = backend.child.try_wait().unwrap().is_some();
                exited || backend.answers_as(&tag)
            },
        );
        if exited {
            let log =
                std::fs::read_to_string(backend._dir.path().join("error.log")).unwrap_or_default();
            return Err(format!("port {port}: {}", log.trim()));
        }
        Ok(backend)
    }

    /// Whether this lighttpd answers on its port (and not someone else).
    fn answers_as(&self, tag: &str) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let mut answer = Vec::new();
        if stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n").is_err()
            || stream.read_to_end(&mut answer).is_err()
        {
            return false;
        }
        String::from_utf8_lossy(&answer)
            .lines()
            .any(|line| line.trim_end() == format!("Server: {tag}"))
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
