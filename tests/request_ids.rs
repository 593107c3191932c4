//! Request ids and what a client is told when the server fails: every answer
//! names its request id; a failure on the server's side reaches git as a short
//! message quoting that id, never the internal detail (paths, store keys,
//! database text), while the client's own mistakes are told precisely.

mod common;

use common::*;

fn request_id(head: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-request-id")
            .then(|| value.trim().to_string())
    })
}

fn pkt(text: &str) -> String {
    format!("{:04x}{text}", text.len() + 4)
}

#[test]
fn every_answer_names_its_request_id_keeping_a_sane_one_from_the_client() {
    let server = Server::start();
    let (status, head, _) = http_full(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    let made = request_id(&head).expect("a request id header");
    assert_eq!(made.len(), 16, "{made}");
    assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
    let (_, head, _) = http_full(server.addr, "GET", "/healthz", &[], b"");
    assert_ne!(
        request_id(&head).unwrap(),
        made,
        "each request gets its own"
    );

    let (_, head, _) = http_full(
        server.addr,
        "GET",
        "/api/v1/repos/nobody/nothing",
        &[("X-Request-Id", "ci-run-42.step_3")],
        b"",
    );
    assert_eq!(request_id(&head).unwrap(), "ci-run-42.step_3");

    for insane in ["has space", &"x".repeat(65), "semi;colon"] {
        let (_, head, _) = http_full(
            server.addr,
            "GET",
            "/healthz",
            &[("X-Request-Id", insane)],
            b"",
        );
        let id = request_id(&head).unwrap();
        assert_ne!(id, insane);
        assert_eq!(id.len(), 16, "a made-up id replaces {insane:?}");
    }
}

#[test]
fn a_server_side_failure_reaches_git_with_the_request_id_and_without_its_detail() {
    let pushed = Pushed::fixture("ivy", "broken", 3);
    let server = &pushed.server;
    let head = git(&pushed.src, &["rev-parse", "HEAD"]).trim().to_string();
    // Damage the stored pack index: the server can no longer read the repository.
    let store_dir = server.repo_dir("ivy", "broken");
    let indexes: Vec<_> = files_under(&store_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    assert!(!indexes.is_empty(), "the push stored a pack");
    for index in &indexes {
        std::fs::write(index, b"not an index").unwrap();
    }

    let body = format!(
        "{}0000{}",
        pkt(&format!("want {head} side-band-64k ofs-delta\n")),
        pkt("done\n")
    );
    let (status, head_text, reply) = http_full(
        server.addr,
        "POST",
        "/ivy/broken/git-upload-pack",
        &[
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("X-Request-Id", "broken-pack-1"),
        ],
        body.as_bytes(),
    );
    let reply = String::from_utf8_lossy(&reply);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(request_id(&head_text).as_deref(), Some("broken-pack-1"));
    assert!(
        reply.contains("ERR upload-pack: internal server error (request id broken-pack-1)"),
        "git is told the request id: {reply}"
    );
    let repo_id = server.repo_id("ivy", "broken");
    for detail in [repo_id.as_str(), ".idx", "objects/pack", "index"] {
        assert!(!reply.contains(detail), "{detail:?} leaked: {reply}");
    }

    // A real git client shows the same message.
    let dest = pushed.work.path().join("clone");
    let out = git_output(
        pushed.work.path(),
        &["clone", "-q", &pushed.url, dest.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("internal server error (request id "),
        "git shows the request id: {stderr}"
    );
    assert!(!stderr.contains(&repo_id), "{stderr}");
}

#[test]
fn a_clients_own_mistake_is_told_precisely() {
    let pushed = Pushed::fixture("ivy", "fine", 1);
    let missing = "0123456789012345678901234567890123456789";
    let body = format!(
        "{}0000{}",
        pkt(&format!("want {missing} side-band-64k\n")),
        pkt("done\n")
    );
    let (status, _, reply) = http_full(
        pushed.server.addr,
        "POST",
        "/ivy/fine/git-upload-pack",
        &[("Content-Type", "application/x-git-upload-pack-request")],
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.contains(&format!("ERR upload-pack: not our ref {missing}")),
        "{reply}"
    );
    assert!(!reply.contains("request id"), "{reply}");
}
