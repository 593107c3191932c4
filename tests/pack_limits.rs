//! Pack generation limits with real git clients: past the limit a clone is
//! refused with a message git shows (and counted), the clones that got a turn
//! are whole, and once the rush is over clones succeed again.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn past_the_limit_a_clone_is_refused_with_a_message_git_shows_and_later_ones_succeed() {
    let pushed = Pushed::fixture_with(
        |config| {
            // One pack at a time, nobody waits; every clone generates its pack.
            config.pack_generations.instance = 1;
            config.pack_generations.per_repo = 1;
            config.pack_generations.queue = 0;
            config.pack_generations.wait = Duration::ZERO;
            config.response_cache_bytes = 0;
        },
        "lia",
        "busy",
        300,
    );
    let work = pushed.work.path();
    let head = git(&pushed.src, &["rev-parse", "HEAD"]);
    let running: Vec<_> = (0..6)
        .map(|i| {
            let (url, dest) = (pushed.url.clone(), work.join(format!("c{i}")));
            std::thread::spawn(move || {
                let out = git_output(
                    dest.parent().unwrap(),
                    &["clone", "-q", &url, dest.to_str().unwrap()],
                );
                (out, dest)
            })
        })
        .collect();
    let clones: Vec<_> = running.into_iter().map(|t| t.join().unwrap()).collect();
    let mut refused = 0;
    for (out, dest) in &clones {
        if out.status.success() {
            assert_eq!(git(dest, &["rev-parse", "HEAD"]), head);
            git(dest, &["fsck", "--strict"]);
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("too many packs of this repository are being made right now"),
                "{stderr}"
            );
            refused += 1;
        }
    }
    assert!(refused >= 1, "six clones at once, one turn: someone waits");
    assert!(refused < clones.len(), "someone got the turn");
    let (status, body) = http(pushed.server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let counted: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("gitclaw_pack_generations_refused_total{scope=\"repository\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(counted, refused as f64, "{text}");
    // The rush is over: a clone gets its turn.
    let later = work.join("later");
    git(work, &["clone", "-q", &pushed.url, later.to_str().unwrap()]);
    assert_eq!(git(&later, &["rev-parse", "HEAD"]), head);
}
