//! Big objects, as a user pushes and clones them, against the real binary: a
//! 512 MiB blob arrives in a push of a few objects (so it is stored loose), and
//! neither the push nor four concurrent clones make the server's memory grow
//! with the blob's size.

mod common;

use std::path::Path;

use common::*;

/// The blob: 512 MiB of zeros, which a push carries in about half a megabyte.
const BIG: u64 = 512 << 20;
/// How much the server's resident memory may grow above idle while it moves the blob.
const BUDGET: u64 = 150 << 20;
const CLONES: usize = 4;

/// Resident memory (heap and mapped files) of the server.
fn rss(server: &ServerProcess) -> u64 {
    let m = server.memory();
    m.anon + m.file
}

/// The highest resident memory of the server while `f` runs, sampled every 20 ms.
fn peak_rss_during<T>(server: &ServerProcess, f: impl FnOnce() -> T) -> (u64, T) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss(server));
                // The sampling period, not a wait on anything.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            peak
        });
        let out = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (sampler.join().unwrap(), out)
    })
}

/// A repository with the big blob and two small files in one commit.
fn repo_with_big_blob(src: &Path) -> String {
    git(
        src.parent().unwrap(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    let file = std::fs::File::create(src.join("zeros.bin")).unwrap();
    file.set_len(BIG).unwrap();
    std::fs::write(src.join("README"), "a big file and two small ones\n").unwrap();
    std::fs::write(src.join("notes.txt"), "zeros.bin holds 512 MiB of zeros\n").unwrap();
    git(src, &["add", "."]);
    git(src, &["commit", "-q", "-m", "big blob"]);
    git(src, &["rev-parse", "main:zeros.bin"])
        .trim()
        .to_string()
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// Push the blob, then clone it four times at once; each phase must keep the
/// server within [`BUDGET`] above its idle memory, and every clone must be whole.
fn big_blob_round_trip(server: &ServerProcess, label: &str) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let blob = repo_with_big_blob(&src);
    let url = server.create_repo("bo", "big");

    let idle = rss(server);
    let (push_peak, ()) = peak_rss_during(server, || {
        git(&src, &["push", "-q", &url, "main"]);
    });
    let head = git(&src, &["rev-parse", "main"]).trim().to_string();
    assert_eq!(
        remote_refs(&src, &url),
        vec![format!("{head} refs/heads/main")]
    );

    let idle_after_push = rss(server);
    let (clone_peak, clones) = peak_rss_during(server, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..CLONES)
                .map(|i| {
                    let dest = work.path().join(format!("clone-{i}"));
                    let url = url.clone();
                    let dir = work.path().to_owned();
                    s.spawn(move || {
                        // The client streams the blob too, and skips writing it out:
                        // the test is about the server.
                        let out = git_output(
                            &dir,
                            &[
                                "-c",
                                "core.bigFileThreshold=16m",
                                "clone",
                                "-q",
                                "--no-checkout",
                                &url,
                                dest.to_str().unwrap(),
                            ],
                        );
                        assert!(
                            out.status.success(),
                            "clone {i} failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        dest
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    eprintln!(
        "{label}: server RSS idle {} MiB; push of a {} MiB blob: peak {} MiB (+{}); \
         {CLONES} concurrent clones: peak {} MiB (+{} above {} MiB)",
        mib(idle),
        mib(BIG),
        mib(push_peak),
        mib(push_peak.saturating_sub(idle)),
        mib(clone_peak),
        mib(clone_peak.saturating_sub(idle_after_push)),
        mib(idle_after_push),
    );
    for clone in &clones {
        git(clone, &["fsck", "--strict"]);
        assert_eq!(git(clone, &["rev-parse", "HEAD"]).trim(), head);
        assert_eq!(git(clone, &["rev-parse", "HEAD:zeros.bin"]).trim(), blob);
        assert_eq!(
            git(clone, &["cat-file", "-s", &blob]).trim(),
            BIG.to_string(),
            "the clone has the whole blob"
        );
    }
    assert!(
        push_peak.saturating_sub(idle) < BUDGET,
        "{label}: pushing a {} MiB blob made the server grow by {} MiB (budget {} MiB)",
        mib(BIG),
        mib(push_peak.saturating_sub(idle)),
        mib(BUDGET)
    );
    assert!(
        clone_peak.saturating_sub(idle_after_push) < BUDGET,
        "{label}: {CLONES} concurrent clones of a {} MiB blob made the server grow by {} MiB (budget {} MiB)",
        mib(BIG),
        mib(clone_peak.saturating_sub(idle_after_push)),
        mib(BUDGET)
    );
}

#[test]
fn a_512_mib_blob_is_pushed_and_cloned_four_times_at_once_in_bounded_memory() {
    let server = ServerProcess::start(&[]);
    big_blob_round_trip(&server, "embedded");
}

#[test]
fn a_512_mib_blob_is_pushed_and_cloned_in_bounded_memory_on_s3_and_postgres() {
    let mut env = s3_process_env(&fresh_bucket());
    env.push(("DATABASE_URL", postgres_database()));
    let server = ServerProcess::start(&env);
    big_blob_round_trip(&server, "s3+postgres");
}

/// Push to a repository holding the fixture a commit on the empty tree, its
/// parent `main`, in the pack `pack_with` makes of the commit's text (and
/// what else it adds): the push must be refused with `reason`, refs must
/// stay, and the server's peak memory must grow by less than [`BUDGET`]
/// (what it does not allocate is the point: `what` names it).
fn hostile_push_refused_in_bounded_memory(
    name: &str,
    pack_with: impl FnOnce(&[u8]) -> Vec<u8>,
    reason: &str,
    what: &str,
) {
    use common::wire::*;
    let server = ServerProcess::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("bo", name);
    git(&src, &["push", "-q", &url, "refs/heads/*:refs/heads/*"]);
    let before = remote_refs(&src, &url);
    let old = git(&src, &["rev-parse", "main"]).trim().to_string();
    let empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let commit = format!(
        "tree {empty_tree}\nparent {old}\nauthor A <a@example.com> 1700000000 +0000\n\
         committer A <a@example.com> 1700000000 +0000\n\n{name}\n"
    );
    let new = git_with_input(
        &src,
        &["hash-object", "-t", "commit", "--stdin"],
        commit.as_bytes(),
    );
    let pack = pack_with(commit.as_bytes());

    let peak_before = server.peak_rss();
    let (status, body) = http(
        server.addr,
        "POST",
        &format!("/bo/{name}.git/git-receive-pack"),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        &push_request(&[(&old, new.trim(), "refs/heads/main")], &pack),
    );
    drop(pack);
    let report = report_text(&body);
    let grown = server.peak_rss().saturating_sub(peak_before);
    assert_eq!(status, 200);
    assert!(
        grown < BUDGET,
        "{what} raised the server's peak memory by {} MiB",
        mib(grown)
    );
    assert!(report.contains(reason), "{report}");
    assert!(report.contains("ng refs/heads/main"), "{report}");
    assert_eq!(remote_refs(&src, &url), before, "refs unchanged");
}

/// A delta in a 200-byte push claims a 900 MB result and makes nothing: the
/// push is refused naming the lie, refs stay, and the server never allocates
/// what the delta claimed (git's index-pack, and an indexer allocating the
/// claimed result before applying the delta, would).
#[test]
fn a_delta_claiming_a_huge_result_is_refused_without_the_server_allocating_it() {
    use common::wire::*;
    use sha1::Digest;
    let hello: [u8; 20] = sha1::Sha1::digest(b"blob 5\0hello").into();
    let delta = vec![5u8, 0x80, 0xd2, 0x93, 0xad, 0x03]; // base 5 bytes, result 900,000,000
    let mut lie = entry_header(7, delta.len());
    lie.extend_from_slice(&hello);
    hostile_push_refused_in_bounded_memory(
        "lies",
        |commit| {
            raw_pack(&[
                (entry_header(1, commit.len()), commit.to_vec()),
                (entry_header(2, 0), Vec::new()),
                (entry_header(3, 5), b"hello".to_vec()),
                (lie, delta),
            ])
        },
        "delta produced 0 bytes, its header says 900000000",
        "refusing the delta",
    );
}

/// A blob of 5 bytes whose zlib stream is padded to 200 MB with empty blocks
/// (valid zlib, which git's index-pack streams through): the push is refused
/// by the padding, refs stay, and the server never holds the padding (an
/// indexer keeping an entry's compressed bytes would).
#[test]
fn an_entry_padded_with_empty_blocks_is_refused_without_the_server_holding_it() {
    use common::wire::*;
    let empty_blocks = 40 << 20; // 200 MiB of padding
    hostile_push_refused_in_bounded_memory(
        "padded",
        |commit| {
            raw_pack_deflated(&[
                (entry_header(1, commit.len()), padded_zlib(commit, 0)),
                (entry_header(2, 0), padded_zlib(b"", 0)),
                (entry_header(3, 5), padded_zlib(b"hello", empty_blocks)),
            ])
        },
        "5 inflated (a zlib stream padded past twice its data and 64 KiB)",
        "the padded entry",
    );
}
