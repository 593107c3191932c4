//! Pack generation limits with real git clients: past the limit a clone is
//! refused with a message git shows (and counted), and once the turn is free
//! clones succeed again.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use common::{wire::pkt, *};

#[test]
fn past_the_limit_a_clone_is_refused_with_a_message_git_shows_and_later_ones_succeed() {
    let server = Server::start_with(|config| {
        // One pack at a time and nobody waits; every clone generates its pack.
        config.pack_generations.instance = 1;
        config.pack_generations.per_repo = 1;
        config.pack_generations.queue = 0;
        config.pack_generations.wait = Duration::ZERO;
        config.response_cache_bytes = 0;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 20);
    // More than the socket buffers hold: a client that stops reading keeps the
    // generation (and its turn) going.
    std::fs::write(src.join("noise.bin"), incompressible(24 << 20, 7)).unwrap();
    git(&src, &["add", "noise.bin"]);
    git(&src, &["commit", "-q", "-m", "noise"]);
    let url = server.create_repo("lia", "busy");
    push_everything(&src, &url);
    let head = git(&src, &["rev-parse", "main"]).trim().to_string();

    // A shallow clone of main that reads the start of its answer and then stalls:
    // its generation holds the only turn.
    let mut body = pkt(&format!("want {head} side-band-64k ofs-delta shallow\n"));
    body.extend_from_slice(&pkt("deepen 1\n"));
    body.extend_from_slice(b"00000009done\n");
    let mut holder = TcpStream::connect(server.addr).unwrap();
    let request = format!(
        "POST /lia/busy.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    holder.write_all(request.as_bytes()).unwrap();
    holder.write_all(&body).unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut start = vec![0u8; 4096];
    holder.read_exact(&mut start).unwrap();
    assert!(start.starts_with(b"HTTP/1.1 200"), "{start:?}");
    wait_until(Duration::from_secs(60), "the stalled clone's turn", || {
        metric(server.addr, "gitclaw_pack_generations_in_use") == 1.0
    });

    // Meanwhile a clone is refused, and git shows why.
    let refused = git_output(
        work.path(),
        &["clone", "-q", "--depth", "1", &url, "refused"],
    );
    assert!(!refused.status.success(), "the only turn was taken");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("too many packs of this repository are being made right now"),
        "{stderr}"
    );
    assert_eq!(
        metric(
            server.addr,
            "gitclaw_pack_generations_refused_total{scope=\"repository\"}"
        ),
        1.0
    );

    // The stalled client goes away: its turn is given back and clones succeed.
    drop(holder);
    wait_until(Duration::from_secs(60), "the turn to be given back", || {
        metric(server.addr, "gitclaw_pack_generations_in_use") == 0.0
    });
    for (i, depth) in [Some("1"), None].into_iter().enumerate() {
        let dest = work.path().join(format!("later{i}"));
        let mut args = vec!["clone", "-q"];
        args.extend(depth.iter().flat_map(|d| ["--depth", *d]));
        args.extend([url.as_str(), dest.to_str().unwrap()]);
        git(work.path(), &args);
        assert_eq!(git(&dest, &["rev-parse", "HEAD"]).trim(), head);
        git(&dest, &["fsck", "--strict"]);
    }
}
