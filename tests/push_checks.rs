//! What a push is refused for, and how the client hears it: ref names the
//! server could not advertise or git could not store, malformed command
//! sections, and trees whose entries a checkout must not write (git's fsck
//! checks, at the level `GITCLAW_FSCK_OBJECTS` sets).

mod common;

use std::path::Path;

use common::*;
use gitclaw_pack::fsck::FsckLevel;

const ZERO: &str = "0000000000000000000000000000000000000000";

fn pkt(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

/// Commands with the capabilities on the first, a flush, then `pack`.
fn push_request(commands: &[(&str, &str, &str)], caps: &str, pack: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (old, new, name)) in commands.iter().enumerate() {
        let line = if i == 0 {
            format!("{old} {new} {name}\0{caps}\n")
        } else {
            format!("{old} {new} {name}\n")
        };
        body.extend(pkt(line.as_bytes()));
    }
    body.extend_from_slice(b"0000");
    body.extend_from_slice(pack);
    body
}

/// The packets of a response: `(band, text)` for sideband packets, band 0
/// for a bare pkt-line, `None` for a flush.
fn packets(body: &[u8], sideband: bool) -> Vec<Option<(u8, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).unwrap(), 16).unwrap();
        if len == 0 {
            out.push(None);
            rest = &rest[4..];
            continue;
        }
        let data = &rest[4..len];
        out.push(Some(if sideband {
            (data[0], data[1..].to_vec())
        } else {
            (0, data.to_vec())
        }));
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "trailing bytes {rest:?}");
    out
}

/// The report-status lines inside a sideband-wrapped answer.
fn report_lines(body: &[u8]) -> Vec<String> {
    let inner: Vec<u8> = packets(body, true)
        .into_iter()
        .flatten()
        .filter(|(band, _)| *band == 1)
        .flat_map(|(_, data)| data)
        .collect();
    packets(&inner, false)
        .into_iter()
        .flatten()
        .map(|(_, line)| String::from_utf8_lossy(&line).trim_end().to_string())
        .collect()
}

fn post_receive_pack(server: &Server, repo: &str, body: &[u8]) -> (u16, Vec<u8>) {
    http(
        server.addr,
        "POST",
        &format!("/{repo}/git-receive-pack"),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        body,
    )
}

/// A branch name of `len` bytes made of 200-byte components, which git's
/// `check-ref-format` accepts.
fn long_branch(len: usize) -> String {
    let mut name = String::from("refs/heads/");
    while name.len() < len {
        let take = (len - name.len()).min(200);
        if take < 2 {
            name.push_str(&"x".repeat(take));
            break;
        }
        name.push_str(&"b".repeat(take - 1));
        name.push('/');
    }
    name.truncate(len);
    if name.ends_with('/') {
        name.pop();
        name.push('x');
    }
    name
}

/// The three advertisements a client may read all answer 200 and list `main`.
fn assert_advertises(p: &Pushed) {
    for version in ["0", "1", "2"] {
        let out = git_output(
            &p.src,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "ls-remote",
                &p.url,
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ls-remote v{version}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("\trefs/heads/main\n"),
            "v{version}: {stdout:.300}"
        );
    }
    for service in ["git-upload-pack", "git-receive-pack"] {
        let (status, _) = http(
            p.server.addr,
            "GET",
            &format!(
                "/{}/{}.git/info/refs?service={service}",
                "mallory", "target"
            ),
            &[],
            b"",
        );
        assert_eq!(status, 200, "{service}");
    }
}

#[test]
fn a_branch_name_too_long_to_advertise_is_refused_and_the_repository_stays_readable() {
    let p = Pushed::fixture("mallory", "target", 1);
    let before = p.server.stored_refs("mallory", "target");
    let name = long_branch(65_300);
    assert_eq!(name.len(), 65_300);
    let out = git_output(&p.src, &["push", &p.url, &format!("main:{name}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push must fail");
    assert!(
        stderr.contains("refname too long (65300 bytes, at most 1024)"),
        "git shows why: {stderr:.2000}"
    );
    assert_eq!(p.server.stored_refs("mallory", "target"), before);
    assert_advertises(&p);
    // A name within the cap goes through.
    let fine = long_branch(1024);
    git(&p.src, &["push", "-q", &p.url, &format!("main:{fine}")]);
    assert_advertises(&p);
}

/// A ref stored before names were capped (written here through the
/// metadata API), which is also HEAD's target: every advertisement still
/// answers, without the `symref=` that no longer fits.
#[test]
fn a_stored_over_long_ref_does_not_break_the_advertisement() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("mallory", "target");
    // The objects, without making a branch HEAD.
    git(&src, &["push", "-q", &url, "main:refs/tags/base"]);
    let head = git(&src, &["rev-parse", "main"]).trim().to_string();
    let oid = gix_hash::ObjectId::from_hex(head.as_bytes()).unwrap();
    let name = long_branch(65_300);
    let repo_id = server.repo_id("mallory", "target");
    let results = server
        .block_on(server.state.meta.commit_push(gitclaw_metadata::PushCommit {
            repo_id,
            updates: vec![gitclaw_metadata::RefUpdate {
                name: name.clone(),
                old: None,
                new: Some(oid),
            }],
            atomic: false,
            pack: None,
            loose: Vec::new(),
            actor: "test".into(),
            details: serde_json::Value::Null,
            pack_closure: None,
            push_options: Vec::new(),
            ref_details: Default::default(),
        }))
        .unwrap();
    assert!(results[0].is_applied());
    let repo = server
        .block_on(server.state.meta.get_repo("mallory", "target"))
        .unwrap()
        .unwrap();
    assert_eq!(repo.head_ref, name, "the long branch is HEAD's target");

    for version in ["0", "1", "2"] {
        let out = git_output(
            &src,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "ls-remote",
                &url,
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ls-remote v{version}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("{head}\tHEAD\n")), "v{version}");
        assert!(stdout.contains(&format!("{head}\t{name}\n")), "v{version}");
        assert!(
            stdout.contains(&format!("{head}\trefs/tags/base\n")),
            "v{version}"
        );
    }
    // Pushing to the repository still works (its advertisement leaves out
    // the ref whose line cannot carry the capabilities).
    git(&src, &["push", "-q", &url, "main:refs/heads/main"]);
    let out = git_output(&src, &["ls-remote", &url, "refs/heads/main"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&head));
}

#[test]
fn refused_ref_names_get_an_ng_line_with_the_reason() {
    let p = Pushed::fixture("mallory", "target", 1);
    let before = p.server.stored_refs("mallory", "target");
    let head = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    let long = long_branch(65_300);
    let cases: [(&str, &str); 5] = [
        (
            long.as_str(),
            "refname too long (65300 bytes, at most 1024)",
        ),
        ("refs/heads/a\u{1}b", "funny refname (control character)"),
        ("refs/heads/tab\there", "funny refname (control character)"),
        ("refs/heads/del\u{7f}", "funny refname (control character)"),
        (
            "refs/heads/a..b",
            "funny refname (reference name cannot contain repeated dots)",
        ),
    ];
    for (name, reason) in cases {
        let body = push_request(&[(ZERO, &head, name)], "report-status side-band-64k", b"");
        let (status, reply) = post_receive_pack(&p.server, "mallory/target.git", &body);
        assert_eq!(status, 200);
        let lines = report_lines(&reply);
        assert_eq!(
            lines,
            ["unpack ok".to_string(), format!("ng {name} {reason}")],
            "{name:.40}"
        );
    }
    // Refused names do not hold back the others.
    let body = push_request(
        &[
            (ZERO, &head, "refs/heads/bad\u{1b}[31m"),
            (ZERO, &head, "refs/heads/fine"),
        ],
        "report-status side-band-64k",
        b"",
    );
    let (_, reply) = post_receive_pack(&p.server, "mallory/target.git", &body);
    assert_eq!(
        report_lines(&reply),
        [
            "unpack ok",
            "ng refs/heads/bad\u{1b}[31m funny refname (control character)",
            "ok refs/heads/fine",
        ]
    );
    let mut expected = before;
    expected.push(format!("{head} refs/heads/fine"));
    expected.sort();
    assert_eq!(p.server.stored_refs("mallory", "target"), expected);
}

#[test]
fn malformed_command_sections_are_answered_in_git_terms() {
    let p = Pushed::fixture("mallory", "target", 1);
    let before = p.server.stored_refs("mallory", "target");
    let head = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    let post = |body: &[u8]| {
        let (status, reply) = post_receive_pack(&p.server, "mallory/target.git", body);
        assert_eq!(status, 200);
        assert!(!reply.is_empty(), "never an empty answer to {body:?}");
        reply
    };

    // A bad object id in the first command: its capabilities are still read,
    // so the answer is a report (git: "error: remote unpack failed: ...").
    let bad_old = format!("{}g", &ZERO[..39]);
    let body = push_request(
        &[(&bad_old, &head, "refs/heads/x")],
        "report-status side-band-64k",
        b"",
    );
    assert_eq!(
        report_lines(&post(&body)),
        [format!(
            "unpack invalid push request: invalid object id '{bad_old}'"
        )]
    );

    // A bad second command: the first is named as rejected too, so git
    // shows "[remote rejected] ... (invalid push request)".
    let body = push_request(
        &[(ZERO, &head, "refs/heads/y"), (ZERO, "123", "refs/heads/z")],
        "report-status side-band-64k",
        b"",
    );
    assert_eq!(
        report_lines(&post(&body)),
        [
            "unpack invalid push request: expected old/new/ref, got '0000000000000000000000000000000000000000 123 refs/heads/z'",
            "ng refs/heads/y invalid push request",
        ]
    );

    // Cut off before the flush.
    let mut body = push_request(&[(ZERO, &head, "refs/heads/y")], "report-status", b"");
    body.truncate(body.len() - 4);
    let reply = post(&body);
    assert_eq!(
        packets(&reply, false),
        [
            Some((
                0,
                b"unpack invalid push request: the request ends before its command list does\n"
                    .to_vec()
            )),
            Some((0, b"ng refs/heads/y invalid push request\n".to_vec())),
            None,
        ]
    );

    // No report asked for, no sideband: an ERR packet
    // (git: "fatal: remote error: ...").
    let body = push_request(&[(ZERO, "123", "refs/heads/x")], "ofs-delta", b"");
    let reply = post(&body);
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with(&format!(
            "{:04x}ERR invalid push request: expected old/new/ref, got '",
            reply.len()
        )),
        "{text}"
    );

    // Broken before the capabilities could be read: sideband channel 3,
    // which git prints with or without a sideband ("remote: ...").
    for (body, reason) in [
        (
            &b"zzzz"[..],
            "invalid push request: invalid pkt-line length 'zzzz'",
        ),
        (&b""[..], "invalid push request: empty request"),
        (
            &b"0011not a command0000"[..],
            "invalid push request: expected old/new/ref, got 'not a command'",
        ),
    ] {
        let reply = post(body);
        if body.starts_with(b"0011") {
            // Without a NUL the capabilities are known to be none: ERR.
            let text = String::from_utf8_lossy(&reply);
            assert!(text.ends_with(&format!("ERR {reason}\n")), "{text}");
            continue;
        }
        assert_eq!(
            packets(&reply, true),
            [Some((3, reason.as_bytes().to_vec())), None],
            "{body:?}"
        );
    }

    // A lone flush is a client with nothing to do: nothing to say.
    let (status, reply) = post_receive_pack(&p.server, "mallory/target.git", b"0000");
    assert_eq!((status, reply.len()), (200, 0));
    assert_eq!(p.server.stored_refs("mallory", "target"), before);
}

/// Writes a tree object from raw `(mode, name, id)` entries, as git itself
/// never would, and returns its id.
fn write_tree(dir: &Path, entries: &[(&str, &[u8], &str)]) -> String {
    let mut raw = Vec::new();
    for (mode, name, id) in entries {
        raw.extend_from_slice(mode.as_bytes());
        raw.push(b' ');
        raw.extend_from_slice(name);
        raw.push(0);
        raw.extend_from_slice(
            gix_hash::ObjectId::from_hex(id.as_bytes())
                .unwrap()
                .as_bytes(),
        );
    }
    let file = dir.join(".git").join("raw-tree");
    std::fs::write(&file, raw).unwrap();
    git(
        dir,
        &[
            "hash-object",
            "-t",
            "tree",
            "--literally",
            "-w",
            file.to_str().unwrap(),
        ],
    )
    .trim()
    .to_string()
}

/// A commit on top of `main` whose tree is `tree`.
fn commit_on_main(dir: &Path, tree: &str) -> String {
    git(dir, &["commit-tree", tree, "-p", "main", "-m", "crafted"])
        .trim()
        .to_string()
}

/// Pushes `commit` to `branch` with real git; returns whether it went
/// through and what git printed.
fn push(p: &Pushed, commit: &str, branch: &str) -> (bool, String) {
    let out = git_output(
        &p.src,
        &["push", &p.url, &format!("{commit}:refs/heads/{branch}")],
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trees_git_would_not_check_out_are_refused_by_default() {
    let p = Pushed::fixture("mallory", "target", 1);
    let before = p.server.stored_refs("mallory", "target");
    let blob = git(&p.src, &["rev-parse", "main:README.md"])
        .trim()
        .to_string();
    let subtree = git(&p.src, &["rev-parse", "main:src"]).trim().to_string();
    // (An empty name is left to the unit tests: git's own pack-objects
    // refuses to walk such a tree.)
    let cases: [(&str, &[u8], &str); 8] = [
        ("40000", b".git", "hasDotgit: contains '.git' as '.git'"),
        ("40000", b".GIT", "hasDotgit: contains '.git' as '.GIT'"),
        ("40000", b".git.", "hasDotgit: contains '.git' as '.git.'"),
        ("100644", b".Git ", "hasDotgit: contains '.git' as '.Git '"),
        ("40000", b"git~1", "hasDotgit: contains '.git' as 'git~1'"),
        ("40000", b"..", "hasDotdot: contains '..'"),
        ("40000", b".", "hasDot: contains '.'"),
        (
            "100644",
            b"etc/passwd",
            "fullPathname: contains full pathname 'etc/passwd'",
        ),
    ];
    for (i, (mode, name, reason)) in cases.iter().enumerate() {
        let target = if *mode == "40000" { &subtree } else { &blob };
        let tree = write_tree(
            &p.src,
            &[
                (*mode, *name, target.as_str()),
                ("100644", b"README.md", &blob),
            ],
        );
        let commit = commit_on_main(&p.src, &tree);
        let (ok, stderr) = push(&p, &commit, &format!("evil-{i}"));
        assert!(!ok, "{name:?} was accepted");
        assert!(
            stderr.contains(&format!("tree {tree}: {reason}")),
            "{name:?}: git shows the tree and the entry: {stderr}"
        );
        assert!(stderr.contains("remote unpack failed"), "{stderr}");
    }
    // A tree buried below the commit's own is found as well.
    let inner = write_tree(&p.src, &[("100644", b".gIt", &blob)]);
    let outer = write_tree(&p.src, &[("40000", b"vendor", &inner)]);
    let commit = commit_on_main(&p.src, &outer);
    let (ok, stderr) = push(&p, &commit, "evil-deep");
    assert!(!ok);
    assert!(
        stderr.contains(&format!("tree {inner}: hasDotgit")),
        "{stderr}"
    );
    assert_eq!(
        p.server.stored_refs("mallory", "target"),
        before,
        "no ref moved"
    );
}

#[test]
fn the_strict_level_adds_the_rest_of_git_fsck_and_off_checks_nothing() {
    let padded_tree = |p: &Pushed| {
        let blob = git(&p.src, &["rev-parse", "main:README.md"])
            .trim()
            .to_string();
        let subtree = git(&p.src, &["rev-parse", "main:src"]).trim().to_string();
        let tree = write_tree(
            &p.src,
            &[
                ("100644", b"README.md", &blob),
                ("040000", b"src", &subtree),
            ],
        );
        (tree.clone(), commit_on_main(&p.src, &tree))
    };

    let strict = Pushed::fixture_with(
        |c| c.fsck_objects = FsckLevel::Strict,
        "mallory",
        "target",
        1,
    );
    let before = strict.server.stored_refs("mallory", "target");
    let (tree, commit) = padded_tree(&strict);
    let (ok, stderr) = push(&strict, &commit, "padded");
    assert!(!ok, "strict refuses a zero-padded mode");
    assert!(
        stderr.contains(&format!(
            "tree {tree}: zeroPaddedFilemode: contains zero-padded file mode '040000' for 'src'"
        )),
        "{stderr}"
    );
    // A commit without an author.
    let main_tree = git(&strict.src, &["rev-parse", "main^{tree}"])
        .trim()
        .to_string();
    let raw = format!(
        "tree {main_tree}\ncommitter C O Mitter <c@example.com> 1700000000 +0000\n\nno author\n"
    );
    let file = strict.src.join(".git").join("raw-commit");
    std::fs::write(&file, raw).unwrap();
    let commit = git(
        &strict.src,
        &[
            "hash-object",
            "-t",
            "commit",
            "--literally",
            "-w",
            file.to_str().unwrap(),
        ],
    )
    .trim()
    .to_string();
    let (ok, stderr) = push(&strict, &commit, "no-author");
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "commit {commit}: missingAuthor: invalid format - expected 'author' line"
        )),
        "{stderr}"
    );
    assert_eq!(strict.server.stored_refs("mallory", "target"), before);
    // What git itself writes passes the strict level.
    commit_file(&strict.src, "more.txt", "more\n", "ordinary");
    git(&strict.src, &["push", "-q", &strict.url, "main"]);

    // The default level lets the padded mode through; off even `.git`.
    let safe = Pushed::fixture("mallory", "target", 1);
    let (_, commit) = padded_tree(&safe);
    let (ok, stderr) = push(&safe, &commit, "padded");
    assert!(ok, "{stderr}");

    let off = Pushed::fixture_with(|c| c.fsck_objects = FsckLevel::Off, "mallory", "target", 1);
    let blob = git(&off.src, &["rev-parse", "main:README.md"])
        .trim()
        .to_string();
    let tree = write_tree(&off.src, &[("100644", b".git", &blob)]);
    let commit = commit_on_main(&off.src, &tree);
    let (ok, stderr) = push(&off, &commit, "dotgit");
    assert!(ok, "{stderr}");
    assert!(off
        .server
        .stored_refs("mallory", "target")
        .contains(&format!("{commit} refs/heads/dotgit")));
}

/// A relay between git and the server that rewrites each receive-pack
/// request body with `rewrite`, to show what real git prints for requests
/// it would never send itself. One request per connection.
fn start_relay(upstream: std::net::SocketAddr, rewrite: fn(Vec<u8>) -> Vec<u8>) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut parts = request_line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                );
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    let (name, value) = line.split_once(':').unwrap();
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                }
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                };
                if header("expect").is_some() {
                    client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                }
                let mut body = Vec::new();
                if let Some(len) = header("content-length") {
                    body.resize(len.parse().unwrap(), 0);
                    reader.read_exact(&mut body).unwrap();
                } else if header("transfer-encoding").is_some() {
                    loop {
                        let mut size = String::new();
                        reader.read_line(&mut size).unwrap();
                        let size = usize::from_str_radix(size.trim(), 16).unwrap();
                        let mut chunk = vec![0; size + 2];
                        reader.read_exact(&mut chunk).unwrap();
                        if size == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..size]);
                    }
                }
                if method == "POST" && path.ends_with("/git-receive-pack") {
                    body = rewrite(body);
                }
                let forwarded: Vec<(&str, &str)> = headers
                    .iter()
                    .filter(|(n, _)| {
                        !matches!(
                            n.as_str(),
                            "host"
                                | "content-length"
                                | "transfer-encoding"
                                | "connection"
                                | "expect"
                        )
                    })
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let (status, head, reply) = http_full(upstream, &method, &path, &forwarded, &body);
                let mut out = format!("HTTP/1.1 {status} Relayed\r\n");
                for line in head.lines().skip(1) {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    if !matches!(
                        name.as_str(),
                        "content-length" | "transfer-encoding" | "connection"
                    ) {
                        out.push_str(line.trim_end());
                        out.push_str("\r\n");
                    }
                }
                out.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.len()
                ));
                client.write_all(out.as_bytes()).unwrap();
                client.write_all(&reply).unwrap();
            });
        }
    });
    format!("http://{addr}")
}

/// Real git, fed answers to command sections it would never send, prints
/// the server's reason instead of failing silently.
#[test]
fn git_prints_why_a_malformed_command_section_was_refused() {
    let p = Pushed::fixture("mallory", "target", 1);
    let before = p.server.stored_refs("mallory", "target");
    commit_file(&p.src, "relay.txt", "relayed\n", "relayed");

    // The first command's old id spoilt: git asked for a report, and gets one.
    let relay = start_relay(p.server.addr, |mut body| {
        body[4 + 39] = b'g';
        body
    });
    let url = format!("{relay}/mallory/target.git");
    let out = git_output(&p.src, &["push", &url, "HEAD:refs/heads/relayed"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "error: remote unpack failed: invalid push request: invalid object id '{}g'",
            &ZERO[..39]
        )),
        "{stderr}"
    );

    // The framing spoilt before the capabilities: sideband channel 3.
    let relay = start_relay(p.server.addr, |mut body| {
        body[..4].copy_from_slice(b"zzzz");
        body
    });
    let url = format!("{relay}/mallory/target.git");
    let out = git_output(&p.src, &["push", &url, "HEAD:refs/heads/relayed"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("remote: invalid push request: invalid pkt-line length 'zzzz'"),
        "{stderr}"
    );
    assert_eq!(p.server.stored_refs("mallory", "target"), before);
}
