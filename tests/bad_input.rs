//! Bad input gets a clear error, stores nothing a ref can see, and the server keeps serving.

mod common;

use common::{wire::*, *};

fn post_receive_pack(server: &Server, repo: &str, body: &[u8]) -> (u16, String) {
    let (status, body) = http(
        server.addr,
        "POST",
        &format!("/{repo}/git-receive-pack"),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        body,
    );
    (status, report_text(&body))
}

struct Pushed {
    server: Server,
    _work: tempfile::TempDir,
    src: std::path::PathBuf,
    url: String,
}

fn pushed_repo(adjust: impl FnOnce(&mut gitclaw_server::Config)) -> Pushed {
    let server = Server::start_with(adjust);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("mallory", "target");
    git(&src, &["push", "-q", &url, "refs/heads/*:refs/heads/*"]);
    Pushed {
        server,
        _work: work,
        src,
        url,
    }
}

/// A real pack for a new commit on top of main.
fn new_commit_pack(p: &Pushed) -> (String, String, Vec<u8>) {
    let old = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    for i in 0..20 {
        std::fs::write(p.src.join(format!("n{i}.txt")), format!("new {i}\n")).unwrap();
    }
    git(&p.src, &["add", "-A"]);
    git(&p.src, &["commit", "-q", "-m", "new"]);
    let new = git(&p.src, &["rev-parse", "HEAD"]).trim().to_string();
    let pack = pack_of(&p.src, &format!("{new}\n^{old}\n"));
    (old, new, pack)
}

fn assert_still_serving(p: &Pushed) {
    let clone = p._work.path().join(format!("check-{}", rand_suffix()));
    git(
        p._work.path(),
        &["clone", "-q", &p.url, clone.to_str().unwrap()],
    );
    git(&clone, &["fsck", "--strict"]);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn truncated_and_corrupt_packs_are_rejected_and_refs_stay() {
    let p = pushed_repo(|_| {});
    let before = remote_refs(&p.src, &p.url);
    let (old, new, pack) = new_commit_pack(&p);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", pack[..pack.len() / 2].to_vec()),
        ("corrupt", {
            let mut c = pack.clone();
            let n = c.len();
            c[n / 2] ^= 0x55;
            c
        }),
        ("bad checksum", {
            let mut c = pack.clone();
            let n = c.len();
            c[n - 1] ^= 0xff;
            c
        }),
        ("not a pack", b"this is not a pack at all".to_vec()),
    ];
    for (what, bad) in cases {
        let (status, report) = post_receive_pack(
            &p.server,
            "mallory/target.git",
            &push_request(&[(&old, &new, "refs/heads/main")], &bad),
        );
        assert_eq!(status, 200, "{what}");
        assert!(
            report.contains("unpack ") && !report.contains("unpack ok"),
            "{what}: {report}"
        );
        assert!(report.contains("ng refs/heads/main"), "{what}: {report}");
        assert_eq!(
            remote_refs(&p.src, &p.url),
            before,
            "{what}: refs unchanged"
        );
    }
    assert_still_serving(&p);
}

/// Found by the `pack_hostile` fuzz target: an object twice in one pack, once as
/// a REF_DELTA against its own id. Stored, it could later read as its own base.
#[test]
fn a_pack_holding_an_object_twice_is_refused_and_refs_stay() {
    let p = pushed_repo(|_| {});
    let before = remote_refs(&p.src, &p.url);
    let old = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    let empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let commit = format!(
        "tree {empty_tree}\nparent {old}\nauthor A <a@example.com> 1700000000 +0000\n\
         committer A <a@example.com> 1700000000 +0000\n\nempty\n"
    );
    let new = git_with_input(
        &p.src,
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        commit.as_bytes(),
    );
    let mut self_delta = entry_header(7, 2);
    self_delta.extend_from_slice(
        gix_hash::ObjectId::from_hex(empty_tree.as_bytes())
            .unwrap()
            .as_bytes(),
    );
    let pack = raw_pack(&[
        (entry_header(1, commit.len()), commit.into_bytes()),
        (entry_header(2, 0), Vec::new()),
        // The empty tree again: an empty delta (base 0 bytes, result 0 bytes) against itself.
        (self_delta, vec![0, 0]),
    ]);
    let (status, report) = post_receive_pack(
        &p.server,
        "mallory/target.git",
        &push_request(&[(&old, &new, "refs/heads/main")], &pack),
    );
    assert_eq!(status, 200);
    assert!(report.contains("appears twice in the pack"), "{report}");
    assert!(report.contains("ng refs/heads/main"), "{report}");
    assert_eq!(remote_refs(&p.src, &p.url), before, "refs unchanged");
    assert_still_serving(&p);
}

#[test]
fn pack_over_the_limit_is_refused() {
    // The fixture (with its 6 MiB blob) fits; a further 24 MiB of noise does not.
    // git sends the whole pack before it reads the answer: the server must take it
    // in (and drop it) for the client to read why, not "broken pipe".
    let p = pushed_repo(|c| c.max_pack_bytes = 8 << 20);
    let before = remote_refs(&p.src, &p.url);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(p.src.join("noise.bin"), noise).unwrap();
    git(&p.src, &["add", "-A"]);
    git(&p.src, &["commit", "-q", "-m", "too big"]);
    let out = git_output(&p.src, &["push", &p.url, "main"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("maximum allowed size"), "{stderr}");
    assert_eq!(remote_refs(&p.src, &p.url), before);
}

#[test]
fn an_object_over_the_limit_is_refused_by_its_size_whole_or_as_a_delta() {
    // The fixture (with its 6 MiB blob) fits under 8 MiB; a 9 MiB file does
    // not, sent whole or as a delta of a stored 7 MiB version of it.
    let limit: u64 = 8 << 20;
    let p = pushed_repo(|c| c.max_object_bytes = limit);
    let refused = |p: &Pushed, size: u64| {
        let before = remote_refs(&p.src, &p.url);
        let out = git_output(&p.src, &["push", &p.url, "main"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("is an object of {size} bytes"))
                && stderr.contains(&format!(
                    "accepts objects of at most {limit} bytes (GITCLAW_MAX_OBJECT_BYTES)"
                )),
            "{stderr}"
        );
        assert_eq!(remote_refs(&p.src, &p.url), before, "no ref moved");
    };
    let noise = incompressible(9 << 20, 11);
    std::fs::write(p.src.join("noise.bin"), &noise).unwrap();
    git(&p.src, &["add", "-A"]);
    git(&p.src, &["commit", "-q", "-m", "too big"]);
    refused(&p, 9 << 20);

    // Within the limit, then grown past it: git sends the new version as a
    // delta of the stored one (a few bytes making 9 MiB).
    git(&p.src, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::write(p.src.join("noise.bin"), &noise[..7 << 20]).unwrap();
    git(&p.src, &["add", "-A"]);
    git(&p.src, &["commit", "-q", "-m", "within"]);
    git(&p.src, &["push", "-q", &p.url, "main"]);
    std::fs::write(p.src.join("noise.bin"), &noise).unwrap();
    git(&p.src, &["commit", "-q", "-am", "grown"]);
    refused(&p, 9 << 20);
    assert_still_serving(&p);
}

#[test]
fn bad_ref_names_and_missing_objects_are_refused() {
    let p = pushed_repo(|_| {});
    let before = remote_refs(&p.src, &p.url);
    let head = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    for name in [
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "HEAD",
        "refs/heads/sp ace",
        "refs/heads/end/",
    ] {
        let (_, report) = post_receive_pack(
            &p.server,
            "mallory/target.git",
            &push_request(&[(ZERO, &head, name)], b""),
        );
        assert!(report.contains(&format!("ng {name}")), "{name}: {report}");
    }
    let missing = "1234567890123456789012345678901234567890";
    let (_, report) = post_receive_pack(
        &p.server,
        "mallory/target.git",
        &push_request(&[(ZERO, missing, "refs/heads/ghost")], b""),
    );
    assert!(report.contains("ng refs/heads/ghost"), "{report}");
    assert_eq!(remote_refs(&p.src, &p.url), before);
}

#[test]
fn malformed_requests_get_clear_errors() {
    let p = pushed_repo(|_| {});
    // Malformed pkt-lines to upload-pack: an ERR packet, not a hang or a crash.
    for body in [&b"zzzzwant"[..], b"0003", b"fffe", b"0032want 123\n"] {
        let (status, reply) = http(
            p.server.addr,
            "POST",
            "/mallory/target.git/git-upload-pack",
            &[("Content-Type", "application/x-git-upload-pack-request")],
            body,
        );
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("ERR "), "{text}");
    }
    // A want of an object the repository does not have.
    let mut body = pkt("want 1234567890123456789012345678901234567890 side-band-64k\n");
    body.extend_from_slice(b"00000009done\n");
    let (_, reply) = http(
        p.server.addr,
        "POST",
        "/mallory/target.git/git-upload-pack",
        &[],
        &body,
    );
    assert!(String::from_utf8_lossy(&reply).contains("ERR upload-pack: not our ref"));
    // Malformed receive-pack commands.
    let (status, report) =
        post_receive_pack(&p.server, "mallory/target.git", b"0010not a command0000");
    assert_eq!(status, 200);
    assert!(report.contains("unpack ") || report.is_empty());
    // Path tricks in repository names.
    for path in [
        "/..%2F..%2Fetc/passwd/info/refs?service=git-upload-pack",
        "/a/.hidden/info/refs?service=git-upload-pack",
    ] {
        let (status, _) = http(p.server.addr, "GET", path, &[], b"");
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
    assert_still_serving(&p);
}

#[test]
fn gzip_request_bodies_are_accepted() {
    let p = pushed_repo(|_| {});
    let head = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    let mut body = pkt(&format!("want {head} side-band-64k ofs-delta\n"));
    body.extend_from_slice(b"00000009done\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &body).unwrap();
    let gz = gz.finish().unwrap();
    let (status, reply) = http(
        p.server.addr,
        "POST",
        "/mallory/target.git/git-upload-pack",
        &[
            ("Content-Encoding", "gzip"),
            ("Content-Type", "application/x-git-upload-pack-request"),
        ],
        &gz,
    );
    assert_eq!(status, 200);
    assert!(
        reply.starts_with(b"0008NAK\n"),
        "{}",
        String::from_utf8_lossy(&reply[..reply.len().min(64)])
    );
    assert!(reply.windows(4).any(|w| w == b"PACK"));
}

#[test]
fn advertisement_bytes_match_the_protocol() {
    let p = pushed_repo(|_| {});
    let (status, body) = http(
        p.server.addr,
        "GET",
        "/mallory/target.git/info/refs?service=git-upload-pack",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    assert!(body.starts_with(b"001e# service=git-upload-pack\n0000"));
    let head = git(&p.src, &["rev-parse", "main"]).trim().to_string();
    let first = &body[34..];
    let len = usize::from_str_radix(std::str::from_utf8(&first[..4]).unwrap(), 16).unwrap();
    let line = String::from_utf8_lossy(&first[4..len]);
    assert!(line.starts_with(&format!("{head} HEAD\0")), "{line}");
    assert!(line.contains("symref=HEAD:refs/heads/main"));
    assert!(body.ends_with(b"0000"));

    let (_, v2) = http(
        p.server.addr,
        "GET",
        "/mallory/target.git/info/refs?service=git-upload-pack",
        &[("Git-Protocol", "version=2")],
        b"",
    );
    assert!(
        v2.starts_with(b"000eversion 2\n"),
        "{}",
        String::from_utf8_lossy(&v2)
    );
    let (_, rp) = http(
        p.server.addr,
        "GET",
        "/mallory/target.git/info/refs?service=git-receive-pack",
        &[("Git-Protocol", "version=2")],
        b"",
    );
    assert!(
        rp.starts_with(b"001f# service=git-receive-pack\n0000"),
        "push stays on v0"
    );
    let (status, _) = http(
        p.server.addr,
        "GET",
        "/mallory/target.git/info/refs",
        &[],
        b"",
    );
    assert_eq!(status, 403, "dumb HTTP is refused");
}
