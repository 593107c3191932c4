//! Crash points: a `gitclaw serve` that dies at a phase of a push, or a
//! `gitclaw gc` that dies at a phase of a compaction — at once, with no
//! clean-up, as `kill -9` would kill it there (`GITCLAW_CRASH_AT`) — leaves
//! nothing a user can tell apart from a push that never started or one that
//! finished: a push's refs are all old or all new, a fresh clone is whole and
//! `git fsck --strict` clean, the restarted server takes the next push, and
//! once the dead process's leases have lapsed `gitclaw gc` leaves no key in
//! the bucket that the database does not record (and none that it records is
//! missing).
//!
//! On Garage and PostgreSQL with real git, one repository (and one server, one
//! database, one bucket) per crash point.

mod common;

use std::{
    collections::BTreeSet,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{ExitStatus, Output},
    time::Duration,
};

use common::*;

/// How long a test waits for a process to die or a lease to lapse.
const DEADLINE: Duration = Duration::from_secs(60);

/// The signal `std::process::abort` raises.
const SIGABRT: i32 = 6;

/// The variable that names the crash point.
const CRASH_AT: &str = "GITCLAW_CRASH_AT";

/// What a crashed push sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One commit of 12 new files on `main`: more new objects than the loose
    /// threshold (10), so stored as a pack and its index.
    Pack,
    /// `main` and `topic` moved together with `--atomic`, stored as a pack.
    Atomic,
    /// One commit of one new file on `main`: four new objects, stored loose.
    Loose,
}

/// How far a push had got when its server died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Nothing was in the store yet.
    NothingStored,
    /// Part of what it stores: the pack without its index, or one loose object.
    SomeStored,
    /// Everything it stores, but the ref transaction had not committed.
    AllStored,
    /// The ref transaction had committed.
    Committed,
}

/// A server on Garage + PostgreSQL with the fixture pushed to `crash/NAME`
/// (and `topic` pointing where `main` does), and a work tree to build further
/// pushes in.
struct Setup {
    server: ServerProcess,
    /// The server's environment, without a crash point.
    env: Vec<(&'static str, String)>,
    database_url: String,
    bucket: String,
    repo: String,
    repo_id: String,
    url: String,
    work: tempfile::TempDir,
    src: PathBuf,
    /// Clones made so far, to name the next one.
    clones: usize,
}

impl Setup {
    fn start(name: &str) -> Setup {
        let database_url = postgres_database();
        let bucket = fresh_bucket();
        let mut env = s3_process_env(&bucket);
        env.push(("DATABASE_URL", database_url.clone()));
        // What compaction replaces and what no row records go at once...
        env.push(("GITCLAW_GC_GRACE_SECS", "0".into()));
        // ...once the leases of the dead process have lapsed, which is soon.
        env.push(("GITCLAW_CLAIM_LEASE_SECS", "2".into()));
        // No compaction or sweep but the `gitclaw gc` a test runs.
        env.push(("GITCLAW_GC_LOOSE_THRESHOLD", "0".into()));
        env.push(("GITCLAW_GC_PACK_THRESHOLD", "0".into()));
        env.push(("GITCLAW_SWEEP_INTERVAL_SECS", "0".into()));
        let server = ServerProcess::start(&env);
        let repo = format!("crash/{name}");
        let url = server.create_repo("crash", name);
        let repo_id = psql(
            &database_url,
            &format!("SELECT id FROM repositories WHERE owner = 'crash' AND name = '{name}'"),
        );
        let work = tempfile::tempdir().expect("temp dir");
        let src = work.path().join("src");
        fixture_repo(&src, 0);
        git(&src, &["branch", "-f", "topic", "main"]);
        push_everything(&src, &url);
        Setup {
            server,
            env,
            database_url,
            bucket,
            repo,
            repo_id,
            url,
            work,
            src,
            clones: 0,
        }
    }

    /// The server's environment with the crash point `point` set.
    fn crash_env(&self, point: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env.clone();
        env.push((CRASH_AT, point.to_string()));
        env
    }

    /// The refs the server advertises, as sorted `oid name` lines.
    fn refs(&self) -> Vec<String> {
        remote_refs(self.work.path(), &self.url)
    }

    /// Where the server's `name` points now.
    fn remote(&self, name: &str) -> String {
        let line = self
            .refs()
            .into_iter()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("the server has no {name}"));
        line.split(' ').next().unwrap().to_string()
    }

    /// A new commit on top of `parent` adding `files` new files under `tag/`,
    /// made in the source repository without moving any branch.
    fn commit_on(&self, parent: &str, files: usize, tag: &str) -> String {
        git(&self.src, &["checkout", "-q", "--detach", parent]);
        std::fs::create_dir_all(self.src.join(tag)).unwrap();
        for i in 0..files {
            std::fs::write(
                self.src.join(tag).join(format!("{i}.txt")),
                format!("{tag}: file {i}\n"),
            )
            .unwrap();
        }
        // Only the new files: the fixture's gitlink has no work tree to add.
        git(&self.src, &["add", "--", tag]);
        git(&self.src, &["commit", "-q", "-m", tag]);
        git(&self.src, &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// New commits for a push of `shape`, on top of what the server has:
    /// `(commit, ref)` pairs.
    fn updates(&self, shape: Shape, tag: &str) -> Vec<(String, &'static str)> {
        let main = self.remote("refs/heads/main");
        match shape {
            Shape::Pack => vec![(self.commit_on(&main, 12, tag), "refs/heads/main")],
            Shape::Loose => vec![(self.commit_on(&main, 1, tag), "refs/heads/main")],
            Shape::Atomic => {
                let first = self.commit_on(&main, 12, tag);
                let second = self.commit_on(&first, 1, &format!("{tag}-topic"));
                vec![(first, "refs/heads/main"), (second, "refs/heads/topic")]
            }
        }
    }

    /// `git push` of `updates` (forced, so any ref may move anywhere).
    fn push(&self, updates: &[(String, &str)], atomic: bool) -> Output {
        let specs: Vec<String> = updates
            .iter()
            .map(|(commit, name)| format!("+{commit}:{name}"))
            .collect();
        let mut args = vec!["push", "-q"];
        if atomic {
            args.push("--atomic");
        }
        args.push(&self.url);
        args.extend(specs.iter().map(String::as_str));
        git_output(&self.src, &args)
    }

    /// Push new commits of `shape` (which must succeed and move the refs).
    fn push_new(&self, shape: Shape, tag: &str) {
        let updates = self.updates(shape, tag);
        let expected = moved_refs(&self.refs(), &updates);
        let out = self.push(&updates, shape == Shape::Atomic);
        assert!(
            out.status.success(),
            "a {shape:?} push ({tag}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(self.refs(), expected, "a {shape:?} push ({tag}): its refs");
    }

    /// The objects `updates` bring that the server's refs in `before` do not reach.
    fn new_objects(&self, updates: &[(String, &str)], before: &[String]) -> usize {
        let mut args = vec!["rev-list".to_string(), "--objects".to_string()];
        args.extend(updates.iter().map(|(commit, _)| commit.clone()));
        args.extend(
            before
                .iter()
                .filter_map(|l| l.split(' ').next())
                .map(|oid| format!("^{oid}")),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git(&self.src, &args).lines().count()
    }

    /// Clone into a new directory; the clone must be `git fsck --strict` clean
    /// and have exactly the branches and tags in `refs` (`oid name` lines as
    /// the server advertises them, peeled tags included).
    fn clone_checked(&mut self, refs: &[String]) {
        self.clones += 1;
        let dir = self.work.path().join(format!("clone-{}", self.clones));
        git(
            self.work.path(),
            &["clone", "-q", "--mirror", &self.url, dir.to_str().unwrap()],
        );
        git(&dir, &["fsck", "--strict", "--no-progress"]);
        let mut cloned = refs_of(&dir, "refs/heads");
        cloned.extend(refs_of(&dir, "refs/tags"));
        cloned.sort();
        let advertised: Vec<String> = refs
            .iter()
            .filter(|l| !l.ends_with("^{}"))
            .cloned()
            .collect();
        assert_eq!(cloned, advertised, "a clone has other refs than advertised");
    }

    /// Keys in the bucket that the database does not record.
    fn unrecorded(&self) -> BTreeSet<String> {
        let recorded: BTreeSet<String> = recorded_keys(&self.database_url, &self.repo_id)
            .into_iter()
            .collect();
        bucket_keys(&self.bucket, &self.repo_id)
            .into_iter()
            .filter(|k| !recorded.contains(k))
            .collect()
    }

    /// Wait until no claim on the repository's keys is live: the leases of the
    /// process that died have lapsed.
    fn wait_for_leases_to_lapse(&self) {
        common::wait_for_leases_to_lapse(&self.database_url, &self.repo_id);
    }

    /// Once the dead process's leases lapsed, `gitclaw gc` succeeds and leaves
    /// the bucket holding exactly the keys the database records, and the
    /// repository clones whole with the refs it had.
    fn gc_leaves_only_recorded_keys(&mut self) {
        self.wait_for_leases_to_lapse();
        let refs = self.refs();
        let out = self.server.command(&["gc", &self.repo]);
        assert!(
            out.status.success(),
            "gitclaw gc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            bucket_keys(&self.bucket, &self.repo_id),
            recorded_keys(&self.database_url, &self.repo_id),
            "after gc the bucket holds other keys than the database records; gc said: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(self.refs(), refs, "gc changed the refs");
        self.clone_checked(&refs);
    }

    /// The server died at `point`: it said so and was aborted. Start it again
    /// without the crash point.
    fn server_died_at(&mut self, point: &str) {
        let lines = self.server.log.until_closed(DEADLINE).to_vec();
        let status = self.server.child.wait().expect("the server's exit");
        assert_crashed_at(point, status, &lines.join("\n"));
        self.server.restart_with_env(&self.env);
        // Its scratch space (the spooled pack) went with the restart.
        self.assert_no_scratch_files("the restart");
    }

    /// No file is left in the scratch space (but the lock files of the
    /// processes that run): what a dead process left there is gone after `after`.
    fn assert_no_scratch_files(&self, after: &str) {
        let left: Vec<_> = files_under(&self.server.data.path().join("tmp"))
            .into_iter()
            .filter(|p| p.extension().is_none_or(|e| e != "lock"))
            .collect();
        assert!(left.is_empty(), "scratch files survived {after}: {left:?}");
    }

    /// Push `shape` to a server that dies at `point`, having got as far as
    /// `reached`, and check what is left after its restart; then check that
    /// the next push goes through.
    fn crash_push(&mut self, point: &str, shape: Shape, reached: Reached) {
        let what = format!("{shape:?} push killed at {point}");
        let before = self.refs();
        let strays_before = self.unrecorded();
        let tag = format!("{shape:?}-{point}").replace(':', "-");
        let updates = self.updates(shape, &tag);
        let new_objects = self.new_objects(&updates, &before);

        self.server.restart_with_env(&self.crash_env(point));
        let out = self.push(&updates, shape == Shape::Atomic);
        assert!(
            !out.status.success(),
            "{what}: git push succeeded: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.server_died_at(point);

        // All old or all new, and whole.
        let after = self.refs();
        if reached == Reached::Committed {
            assert_eq!(
                after,
                moved_refs(&before, &updates),
                "{what}: not every ref moved"
            );
        } else {
            assert_eq!(after, before, "{what}: a ref moved");
        }
        self.clone_checked(&after);

        let strays: Vec<String> = self
            .unrecorded()
            .difference(&strays_before)
            .cloned()
            .collect();
        assert_strays(&what, &strays, shape, reached, new_objects);
        self.next_push_goes_through(&what, shape, &updates, &tag);
    }

    /// After a crashed push of `updates`, the next push goes through: the same
    /// one again, as a user retries; after an atomic push a different one, as
    /// a user who moved on (so what the dead push stored stays for gc to
    /// collect).
    fn next_push_goes_through(
        &self,
        what: &str,
        shape: Shape,
        updates: &[(String, &'static str)],
        tag: &str,
    ) {
        let atomic = shape == Shape::Atomic;
        let next = if atomic {
            self.updates(shape, &format!("{tag}-next"))
        } else {
            updates.to_vec()
        };
        let expected = moved_refs(&self.refs(), &next);
        let out = self.push(&next, atomic);
        assert!(
            out.status.success(),
            "{what}: the next push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(self.refs(), expected, "{what}: the next push's refs");
    }
}

/// The keys a push killed having `reached` so far left that no row records
/// (`strays`): none before it stored anything or once it committed; the pack
/// without its index, or one loose object, midway through storing; the pack
/// and its index, or all `new_objects` loose objects, once it stored them all.
fn assert_strays(
    what: &str,
    strays: &[String],
    shape: Shape,
    reached: Reached,
    new_objects: usize,
) {
    let count = |suffix: &str| strays.iter().filter(|k| k.ends_with(suffix)).count();
    let loose = strays.iter().filter(|k| k.contains("/objects/")).count();
    let expected = match (reached, shape) {
        (Reached::NothingStored | Reached::Committed, _) => (0, 0, 0),
        (Reached::SomeStored, Shape::Loose) => (0, 0, 1),
        (Reached::SomeStored, _) => (1, 0, 0),
        (Reached::AllStored, Shape::Loose) => (0, 0, new_objects),
        (Reached::AllStored, _) => (1, 1, 0),
    };
    assert_eq!(
        (count(".pack"), count(".idx"), loose),
        expected,
        "{what}: unrecorded (.pack, .idx, loose) keys left: {strays:?}"
    );
}

/// `before` (`oid name` lines) with each of `updates` applied.
fn moved_refs(before: &[String], updates: &[(String, &str)]) -> Vec<String> {
    let mut refs: Vec<String> = before
        .iter()
        .filter(|l| {
            !updates
                .iter()
                .any(|(_, name)| l.ends_with(&format!(" {name}")))
        })
        .cloned()
        .collect();
    refs.extend(updates.iter().map(|(oid, name)| format!("{oid} {name}")));
    refs.sort();
    refs
}

/// The process that ended with `status`, having written `stderr`, died at
/// crash point `point`, not of anything else.
fn assert_crashed_at(point: &str, status: ExitStatus, stderr: &str) {
    assert!(
        stderr.contains(&format!("crash point {point} reached")),
        "the process never reached {point}; it wrote:\n{stderr}"
    );
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "the process was not aborted at {point} ({status}); it wrote:\n{stderr}"
    );
}

/// Push every shape the point applies to through a server that dies there,
/// then gc.
fn push_crash_test(name: &str, point: &str, reached: Reached, shapes: &[Shape]) {
    let mut setup = Setup::start(name);
    for &shape in shapes {
        setup.crash_push(point, shape, reached);
    }
    setup.gc_leaves_only_recorded_keys();
    // And the server still takes pushes after gc.
    setup.push_new(Shape::Pack, "after-gc");
}

#[test]
fn a_push_killed_while_its_pack_arrives_moves_no_ref_and_stores_nothing() {
    push_crash_test(
        "receiving",
        "push:receiving",
        Reached::NothingStored,
        &[Shape::Pack, Shape::Atomic, Shape::Loose],
    );
}

#[test]
fn a_push_killed_after_indexing_its_pack_moves_no_ref_and_stores_nothing() {
    push_crash_test(
        "indexed",
        "push:indexed",
        Reached::NothingStored,
        &[Shape::Pack, Shape::Atomic, Shape::Loose],
    );
}

#[test]
fn a_push_killed_between_storing_its_pack_and_its_index_moves_no_ref_and_gc_collects_the_pack() {
    push_crash_test(
        "pack_uploaded",
        "push:pack-uploaded",
        Reached::SomeStored,
        &[Shape::Pack, Shape::Atomic],
    );
}

#[test]
fn a_push_killed_after_storing_its_index_moves_no_ref_and_gc_collects_both() {
    push_crash_test(
        "index_uploaded",
        "push:index-uploaded",
        Reached::AllStored,
        &[Shape::Pack, Shape::Atomic],
    );
}

#[test]
fn a_push_killed_while_storing_loose_objects_moves_no_ref_and_gc_collects_them() {
    push_crash_test(
        "loose_uploaded",
        "push:loose-uploaded",
        Reached::SomeStored,
        &[Shape::Loose],
    );
}

#[test]
fn a_push_killed_inside_its_ref_transaction_moves_no_ref_and_gc_collects_what_it_stored() {
    push_crash_test(
        "in_transaction",
        "push:in-transaction",
        Reached::AllStored,
        &[Shape::Pack, Shape::Atomic, Shape::Loose],
    );
}

#[test]
fn a_push_killed_after_its_commit_keeps_every_ref_it_moved_and_leaves_no_stray_key() {
    push_crash_test(
        "committed",
        "push:committed",
        Reached::Committed,
        &[Shape::Pack, Shape::Atomic, Shape::Loose],
    );
}

/// How far a compaction had got when `gitclaw gc` died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GcReached {
    /// The new packs are in the store, the pack list is the old one.
    Written,
    /// The pack list names the new packs; every replaced key is still stored.
    Swapped,
    /// The pack list names the new packs; one replaced key is deleted.
    Deleting,
}

/// A repository with packs and loose objects to compact; `gitclaw gc` dies at
/// `point`; the repository must clone whole with its refs, a gc run right
/// after must succeed, and once the dead process's leases lapsed gc must leave
/// the repository compacted with only recorded keys.
fn gc_crash_test(name: &str, point: &str, reached: GcReached) {
    let mut setup = Setup::start(name);
    setup.push_new(Shape::Loose, "before-gc-1");
    setup.push_new(Shape::Loose, "before-gc-2");
    setup.push_new(Shape::Pack, "before-gc-3");
    let refs = setup.refs();
    let recorded_before = recorded_keys(&setup.database_url, &setup.repo_id);
    assert!(setup.unrecorded().is_empty());

    let out = setup
        .server
        .command_with_env(&["gc", &setup.repo], &[(CRASH_AT, point.to_string())]);
    assert_crashed_at(point, out.status, &String::from_utf8_lossy(&out.stderr));

    // Whatever gc had done, the repository is whole.
    assert_eq!(setup.refs(), refs, "gc killed at {point} changed the refs");
    setup.clone_checked(&refs);
    assert_gc_stopped(&setup, point, reached, &recorded_before);

    // Run again at once, as an operator would, without waiting for the dead
    // process's leases to lapse: it finishes the job.
    let out = setup.server.command(&["gc", &setup.repo]);
    assert!(
        out.status.success(),
        "gc right after the one killed at {point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        setup.refs(),
        refs,
        "the gc after the killed one changed the refs"
    );
    setup.assert_no_scratch_files("the next gc");
    setup.clone_checked(&refs);

    setup.gc_leaves_only_recorded_keys();
    let recorded = recorded_keys(&setup.database_url, &setup.repo_id);
    assert!(
        !recorded.iter().any(|k| k.contains("/objects/")) && recorded.len() <= 4,
        "gc did not compact: {recorded:?}"
    );
}

/// The `gitclaw gc` killed at `point` stopped where `reached` says, judged by
/// the keys the database records (`recorded_before` it ran) and the bucket holds.
fn assert_gc_stopped(setup: &Setup, point: &str, reached: GcReached, recorded_before: &[String]) {
    let recorded = recorded_keys(&setup.database_url, &setup.repo_id);
    let stored = bucket_keys(&setup.bucket, &setup.repo_id);
    let replaced: Vec<&String> = recorded_before
        .iter()
        .filter(|k| !recorded.contains(k))
        .collect();
    if reached == GcReached::Written {
        assert_eq!(recorded, recorded_before, "gc killed at {point} swapped");
        let strays = setup.unrecorded();
        assert!(
            !strays.is_empty() && strays.iter().all(|k| k.contains("/pack/")),
            "gc killed at {point}: its new packs should be stored, unrecorded: {strays:?}"
        );
        return;
    }
    assert!(
        !replaced.is_empty(),
        "gc killed at {point} did not swap: {recorded:?}"
    );
    let gone = replaced.iter().filter(|k| !stored.contains(k)).count();
    assert_eq!(
        gone,
        usize::from(reached == GcReached::Deleting),
        "gc killed at {point}: replaced keys deleted"
    );
}

#[test]
fn gc_killed_after_writing_its_pack_loses_nothing_and_the_next_gc_finishes() {
    gc_crash_test("gc_written", "gc:written", GcReached::Written);
}

#[test]
fn gc_killed_inside_its_swap_loses_nothing_and_the_next_gc_finishes() {
    gc_crash_test("gc_in_swap", "gc:in-swap", GcReached::Written);
}

#[test]
fn gc_killed_right_after_its_swap_loses_nothing_and_the_next_gc_deletes_what_it_replaced() {
    gc_crash_test("gc_swapped", "gc:swapped", GcReached::Swapped);
}

#[test]
fn gc_killed_while_deleting_replaced_packs_loses_nothing_and_the_next_gc_finishes() {
    gc_crash_test("gc_deleting", "gc:deleting", GcReached::Deleting);
}
