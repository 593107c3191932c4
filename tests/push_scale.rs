//! Pushes at scale, as a user makes them, against the real binary: delta chains
//! 4095 deep, and a pack of several hundred MiB whose push does not make the
//! server's memory grow with its size.

mod common;

use std::{io::Write, path::Path, process::Stdio};

use common::*;

/// A history where one file grows by a line per commit, built with fast-import.
fn growing_file_history(dir: &Path, commits: usize) {
    git(
        dir.parent().unwrap(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    let mut script = String::new();
    let mut content = String::new();
    for i in 0..commits {
        content.push_str(&format!(
            "line {i}: the quick brown fox jumps over the lazy dog\n"
        ));
        script.push_str(&format!(
            "commit refs/heads/main\ncommitter T <t@example.com> {} +0000\ndata 4\nc{:03}\n",
            1_600_000_000 + i,
            i % 1000
        ));
        script.push_str(&format!(
            "M 100644 inline log.txt\ndata {}\n{}\n",
            content.len(),
            content
        ));
    }
    // fast-import deltas each version against the one before: one chain, 4095 deep.
    let mut child = git_cmd(dir)
        .args(["fast-import", "--quiet", "--depth=4095"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn delta_chains_4095_deep_are_taken_and_served() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    growing_file_history(&src, 4200);
    let local_idx = std::fs::read_dir(src.join(".git/objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    assert!(
        longest_chain(&src, &local_idx) >= 4000,
        "the fixture has a deep chain"
    );
    let url = server.create_repo("dora", "deep");
    // pack.depth lets the pushing pack-objects keep the stored chains.
    git(&src, &["-c", "pack.depth=4095", "push", "-q", &url, "main"]);

    let packs: Vec<_> = walk_files(&server.repo_dir("dora", "deep"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    assert_eq!(packs.len(), 1, "one pack stored");
    // The stored pack is Git's own format: verify-pack reads it, chains and all.
    let stored_depth = longest_chain(work.path(), &packs[0]);
    assert!(
        stored_depth >= 4000,
        "the server kept the deep chain ({stored_depth})"
    );

    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["fsck", "--strict"]);
    assert_eq!(
        std::fs::read(clone.join("log.txt")).unwrap(),
        std::fs::read(src.join("log.txt"))
            .unwrap_or_else(|_| { git(&src, &["show", "main:log.txt"]).into_bytes() })
    );
    assert_eq!(git(&clone, &["rev-list", "--count", "HEAD"]).trim(), "4200");
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_300_mib_push_does_not_grow_server_memory_with_its_size() {
    const BLOBS: usize = 300;
    const BLOB: usize = 1 << 20;
    let server = ServerProcess::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    git(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    // Incompressible content, so the pack really is ~300 MiB.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..BLOBS {
        let mut data = vec![0u8; BLOB];
        for chunk in data.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(src.join(format!("blob-{i:03}.bin")), data).unwrap();
    }
    git(&src, &["add", "."]);
    git(
        &src,
        &["-c", "core.compression=0", "commit", "-q", "-m", "big"],
    );
    let url = server.create_repo("bea", "big");
    let before = server.memory();
    let peak = sample_peak_memory(&server, || {
        git(
            &src,
            &["-c", "pack.compression=0", "push", "-q", &url, "main"],
        );
    });
    let pack_bytes = (BLOBS * BLOB) as u64;
    eprintln!(
        "server memory before the push: {} MiB heap; during a {} MiB push: peak {} MiB heap, {} MiB mapped file pages",
        before.anon >> 20,
        pack_bytes >> 20,
        peak.anon >> 20,
        peak.file >> 20
    );
    // Heap (anonymous memory) is what the server holds; mapped file pages are
    // the page cache, which the kernel reclaims under pressure.
    assert!(
        peak.anon < pack_bytes / 4,
        "peak heap {} MiB must stay far below the pack's {} MiB",
        peak.anon >> 20,
        pack_bytes >> 20
    );
    assert_eq!(
        remote_refs(&src, &url),
        vec![format!(
            "{} refs/heads/main",
            git(&src, &["rev-parse", "main"]).trim()
        )]
    );
    // And it comes back whole.
    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["fsck"]);
}

/// The highest heap and mapped-file use of the server while `f` runs, sampled every 20 ms.
fn sample_peak_memory(server: &ServerProcess, f: impl FnOnce()) -> Memory {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = Memory::default();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = server.memory();
                peak.anon = peak.anon.max(now.anon);
                peak.file = peak.file.max(now.file);
                // The sampling period, not a wait on anything.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            peak
        });
        f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sampler.join().unwrap()
    })
}

#[test]
fn pushes_past_the_cap_wait_then_are_told_why() {
    let server = Server::start_with(|c| {
        c.max_concurrent_pushes = 1;
        c.push_wait_secs = 1;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("cap", "busy");
    git(&src, &["push", "-q", &url, "main"]);
    let before = remote_refs(&src, &url);

    // Hold the only push slot, as a push busy storing its objects does. (A push
    // whose pack is still arriving holds none: see tests/hostile_clients.rs.)
    let held = server
        .block_on(server.state.push_slots.acquire())
        .expect("the slot");

    commit_file(&src, "next.txt", "next\n", "next");
    let out = git_output(&src, &["push", &url, "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push past the cap is refused");
    assert!(
        stderr.contains("too many concurrent pushes"),
        "and told why: {stderr}"
    );
    assert_eq!(remote_refs(&src, &url), before, "nothing moved");

    // The slot comes free when the busy push ends.
    drop(held);
    git(&src, &["push", "-q", &url, "main"]);
    assert!(remote_refs(&src, &url).contains(&format!(
        "{} refs/heads/main",
        git(&src, &["rev-parse", "main"]).trim()
    )));
}

#[test]
fn pushes_of_long_delta_chains_keep_server_memory_below_the_content() {
    const COMMITS: usize = 2000;
    let server = ServerProcess::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    growing_file_history(&src, COMMITS);
    // Every version of the file, inflated: what resolving the pushed deltas touches.
    let line = "line 0000: the quick brown fox jumps over the lazy dog\n".len() as u64;
    let inflated = line * (COMMITS as u64) * (COMMITS as u64 + 1) / 2;
    let url = server.create_repo("meg", "chains");
    let before = server.memory();
    let peak = sample_peak_memory(&server, || {
        git(&src, &["-c", "pack.depth=4095", "push", "-q", &url, "main"]);
        // More history on top: a thin pack whose bases are in the stored one.
        for i in 0..50 {
            commit_file(
                &src,
                "log.txt",
                &format!("{}\nmore {i}\n", git(&src, &["show", "main:log.txt"])),
                &format!("more {i}"),
            );
        }
        git(&src, &["push", "-q", &url, "main"]);
    });
    eprintln!(
        "server heap before: {} MiB; peak during pushes of {} MiB of inflated content: {} MiB",
        before.anon >> 20,
        inflated >> 20,
        peak.anon >> 20
    );
    assert!(
        peak.anon.saturating_sub(before.anon) < inflated / 4,
        "the heap grew by {} MiB while pushing {} MiB of content",
        peak.anon.saturating_sub(before.anon) >> 20,
        inflated >> 20
    );
    assert_eq!(
        remote_refs(&src, &url),
        vec![format!(
            "{} refs/heads/main",
            git(&src, &["rev-parse", "main"]).trim()
        )]
    );
}
