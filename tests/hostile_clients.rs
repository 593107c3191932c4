//! Clients that stall, trickle, stop reading or send compression bombs are cut
//! off, and never keep other users from pushing.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use common::{wire::*, *};

/// Short timeouts so the test sees them fire.
fn impatient(config: &mut gitclaw_server::Config) {
    config.timeouts.header_secs = 2;
    config.timeouts.body_secs = 2;
    config.timeouts.body_min_rate = 1024;
    config.timeouts.send_secs = 3;
}

/// Wait until the server closes `stream` (a read returns end of file or an
/// error); returns how long that took, or `None` if it stayed open past `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 65536];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// A push that sends its command section and the start of a pack, then `then`.
fn start_push(server: &Server, repo: &str, old: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "POST /{repo}/git-receive-pack HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-git-receive-pack-request\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut body = push_request(&[(old, &"1".repeat(40), "refs/heads/stalled")], b"");
    // The pack header: version 2, 3 objects; then nothing more.
    body.extend_from_slice(b"PACK\0\0\0\x02\0\0\0\x03");
    stream
        .write_all(format!("{:x}\r\n", body.len()).as_bytes())
        .unwrap();
    stream.write_all(&body).unwrap();
    stream.write_all(b"\r\n").unwrap();
    stream
}

#[test]
fn stalled_and_trickling_clients_are_cut_off_and_never_block_pushes() {
    // Bodies may idle 8 s here: a push that had to wait for the stalled ones to be
    // cut off would take that long.
    let server = Server::start_with(|config| {
        impatient(config);
        config.timeouts.body_secs = 8;
        config.max_concurrent_pushes = 2;
        config.push_wait_secs = 20;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let victim = server.create_repo("sloth", "victim");
    push_everything(&src, &victim);
    let old = git(&src, &["rev-parse", "main"]).trim().to_string();
    let victim_refs = remote_refs(&src, &victim);

    // As many stalled pushes as there are push slots, plus two that trickle a
    // byte every 300 ms (less than 1 KiB a second), plus a connection that never
    // finishes its headers and one that idles after a request.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| start_push(&server, "sloth/victim.git", &old))
        .collect();
    let tricklers: Vec<std::thread::JoinHandle<Option<Duration>>> = (0..2)
        .map(|_| {
            let mut stream = start_push(&server, "sloth/victim.git", &old);
            std::thread::spawn(move || {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(30) {
                    // The trickle is the behaviour under test, not a wait.
                    std::thread::sleep(Duration::from_millis(300));
                    if stream.write_all(b"1\r\nx\r\n").is_err() {
                        return Some(started.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    let mut slow_header = TcpStream::connect(server.addr).unwrap();
    slow_header
        .write_all(b"POST /sloth/victim.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Everything in place before the push: the four pushes' packs arriving in
    // the scratch space, and the idle connection answered (kept alive).
    let scratch = server.data.path().join("tmp");
    wait_until(
        Duration::from_secs(30),
        "the stalled and trickling pushes to reach the server",
        || {
            files_under(&scratch)
                .iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "incoming.pack"))
                .count()
                == 4
        },
    );
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer)
        .expect("the idle connection's request is answered");
    assert_eq!(&answer, b"HTTP/1.1 200");

    // Meanwhile a normal push to another repository goes straight through.
    let other = server.create_repo("busy", "bee");
    let started = Instant::now();
    let out = git_output(
        &src,
        &[
            "push",
            "-q",
            &other,
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ],
    );
    assert!(
        out.status.success(),
        "a push while slow clients hang on fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the push waited {:?}: for the stalled pushes' slots?",
        started.elapsed()
    );
    assert_eq!(remote_refs(&src, &other), remote_refs(&src, &victim));

    // And every hostile connection is cut off after its timeout.
    for (i, stream) in stalled.iter_mut().enumerate() {
        let closed = closed_within(stream, Duration::from_secs(15));
        assert!(
            closed.is_some(),
            "stalled push {i} is still open after 15 s"
        );
    }
    for (i, trickler) in tricklers.into_iter().enumerate() {
        let cut = trickler.join().unwrap();
        assert!(
            cut.is_some(),
            "push {i} trickling a byte every 300 ms was still accepted after 30 s"
        );
    }
    assert!(
        closed_within(&mut slow_header, Duration::from_secs(10)).is_some(),
        "a connection that never finished its headers is still open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).is_some(),
        "an idle kept-alive connection is still open"
    );
    // Nothing moved in the victim.
    assert_eq!(remote_refs(&src, &victim), victim_refs);
}

#[test]
fn a_client_that_stops_reading_a_clone_is_cut_off() {
    let server = Server::start_with(impatient);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 0);
    // 24 MiB that does not compress: more than the socket buffers hold.
    let noise = incompressible(24 << 20, 0x9e3779b97f4a7c15);
    std::fs::write(src.join("noise.bin"), &noise).unwrap();
    git(&src, &["add", "noise.bin"]);
    git(&src, &["commit", "-q", "-m", "noise"]);
    let url = server.create_repo("reader", "stops");
    push_everything(&src, &url);
    let head = git(&src, &["rev-parse", "main"]).trim().to_string();

    let mut body = pkt(&format!("want {head} side-band-64k ofs-delta\n"));
    body.extend_from_slice(b"00000009done\n");
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let request = format!(
        "POST /reader/stops.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    // Read nothing for longer than the send timeout… (the stall is the behaviour
    // under test, not a wait)
    std::thread::sleep(Duration::from_secs(8));
    // …then everything: the server gave up, so the answer ends early, without the
    // flush that ends a complete response.
    let mut received = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The end may come as a reset: what arrived before it is what counts.
    let _ = stream.read_to_end(&mut received);
    assert!(
        received.len() < noise.len(),
        "the whole {} bytes arrived although the client read nothing for 8 s",
        received.len()
    );
    assert!(
        !received.ends_with(b"0\r\n\r\n"),
        "the response was completed, not abandoned"
    );
    // The server still serves everyone else.
    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["fsck", "--strict"]);
}

#[test]
fn a_gzip_bomb_push_is_refused_before_it_fills_the_disk() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("bomber", "target");
    push_everything(&src, &url);
    let old = git(&src, &["rev-parse", "main"]).trim().to_string();
    let before = server.stored_keys("bomber", "target");

    // A valid command section and pack header, then 1 GiB of zeros: about 1 MB
    // once gzipped.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&push_request(
        &[(&old, &"2".repeat(40), "refs/heads/main")],
        b"PACK\0\0\0\x02\0\0\x10\x00",
    ))
    .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        gz.write_all(&zeros).unwrap();
    }
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 2 << 20, "the bomb is {} bytes", gz.len());

    let started = Instant::now();
    let (status, reply) = http(
        server.addr,
        "POST",
        "/bomber/target.git/git-receive-pack",
        &[
            ("Content-Encoding", "gzip"),
            ("Content-Type", "application/x-git-receive-pack-request"),
        ],
        &gz,
    );
    let report = report_text(&reply);
    assert_eq!(status, 200);
    assert!(
        report.contains("unpack ") && report.contains("inflates more than"),
        "the report names the bomb: {report:?}"
    );
    assert!(report.contains("ng refs/heads/main"), "{report:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refusing took {:?}",
        started.elapsed()
    );
    // Nothing large was written: the scratch space is empty again, the refs and
    // the stored keys are as they were.
    let tmp = server.data.path().join("tmp");
    let mut leftover = 0u64;
    for entry in files_under(&tmp) {
        leftover += std::fs::metadata(&entry).map(|m| m.len()).unwrap_or(0);
    }
    assert!(leftover < 1 << 20, "{leftover} bytes left in scratch space");
    assert_eq!(
        git(&src, &["ls-remote", &url, "refs/heads/main"])
            .split_whitespace()
            .next(),
        Some(old.as_str())
    );
    assert_eq!(server.stored_keys("bomber", "target"), before);
}
