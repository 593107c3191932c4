//! `gitclaw fsck`: a repository's stored objects checked whole. A clean
//! repository passes; a damaged or missing object, loose or packed, is named
//! and the command fails.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Every file under `dir` whose path ends with `tail`.
fn files_ending(dir: &Path, tail: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(tail) {
                found.push(path);
            }
        }
    }
    found
}

/// The fixture history pushed to `url` (stored as a pack), then a small
/// commit (stored as loose objects): its work directory and repository.
fn pushed_with_a_loose_file(url: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    push_everything(&src, url);
    std::fs::write(src.join("small.txt"), "a small file, stored loose\n").unwrap();
    git(&src, &["add", "small.txt"]);
    git(&src, &["commit", "-q", "-m", "small"]);
    git(&src, &["push", "-q", url, "main"]);
    (work, src)
}

/// Run `gitclaw fsck ARGS`: whether it passed, and what it printed.
fn fsck(server: &ServerProcess, args: &[&str]) -> (bool, String) {
    let mut all = vec!["fsck"];
    all.extend(args);
    let out = server.command(&all);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// Overwrite 64 bytes in the middle of `path`; returns what it held.
fn damage(path: &Path) -> Vec<u8> {
    let stored = std::fs::read(path).unwrap();
    let mut damaged = stored.clone();
    let middle = damaged.len() / 2;
    let end = (middle + 64).min(damaged.len());
    damaged[middle..end].iter_mut().for_each(|b| *b ^= 0xa5);
    std::fs::write(path, &damaged).unwrap();
    stored
}

#[test]
fn fsck_passes_whole_repositories_and_names_what_is_damaged_or_missing() {
    let server = ServerProcess::start(&[]);
    let url = server.create_repo("acme", "app");
    server.create_repo("acme", "empty");
    let (_work, src) = pushed_with_a_loose_file(&url);

    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok, "{said}");
    let reached = git(&src, &["rev-list", "--objects", "--all"])
        .lines()
        .count();
    assert!(
        said.contains("acme/app: ok: ")
            && said.contains(&format!(
                "the {reached} objects the refs reach are all there"
            )),
        "{said}"
    );
    let (ok, said) = fsck(&server, &[]);
    assert!(ok && said.contains("acme/empty: ok"), "{said}");

    // A damaged loose object.
    let blob = git(&src, &["rev-parse", "main:small.txt"])
        .trim()
        .to_string();
    let loose = files_ending(
        server.data.path(),
        &format!("objects/{}/{}", &blob[..2], &blob[2..]),
    );
    assert_eq!(loose.len(), 1, "the loose object's file");
    let kept = damage(&loose[0]);
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains(&format!("acme/app: loose object {blob}")),
        "{said}"
    );
    assert!(said.contains("1 of 1 repositories have problems"), "{said}");
    // Missing: what the refs reach is not all there.
    std::fs::remove_file(&loose[0]).unwrap();
    let (ok, said) = fsck(&server, &[]);
    assert!(!ok, "{said}");
    assert!(said.contains(&blob), "{said}");
    assert!(said.contains("acme/empty: ok"), "{said}");
    std::fs::write(&loose[0], &kept).unwrap();
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok, "restored: {said}");

    // A damaged pack: its objects do not come out as their ids.
    let packs = files_ending(server.data.path(), ".pack");
    assert!(!packs.is_empty(), "the first push is stored as a pack");
    damage(&packs[0]);
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(!ok, "{said}");
    let pack = packs[0].file_stem().unwrap().to_string_lossy().to_string();
    let hash = pack.trim_start_matches("pack-");
    assert!(said.contains(&format!("in pack {hash}")), "{said}");
}

/// On S3 and PostgreSQL: a clean repository passes; a loose object whose
/// stored bytes were replaced is named.
#[test]
fn fsck_reads_every_object_from_s3() {
    let bucket = fresh_bucket();
    let mut env = s3_process_env(&bucket);
    env.push(("DATABASE_URL", postgres_database()));
    let server = ServerProcess::start(&env);
    let url = server.create_repo("acme", "app");
    let (_work, src) = pushed_with_a_loose_file(&url);
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok && said.contains("acme/app: ok: "), "{said}");

    let (status, body) = http(server.addr, "GET", "/api/v1/repos/acme/app", &[], b"");
    assert_eq!(status, 200);
    let repo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let repo_id = gitclaw_storage::RepoId::new(repo["id"].as_str().unwrap()).unwrap();
    let blob = git(&src, &["rev-parse", "main:small.txt"])
        .trim()
        .to_string();
    let key = gitclaw_storage::ObjectKey::loose(
        &repo_id,
        &gitclaw_pack::ObjectId::from_hex(blob.as_bytes()).unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut settings = s3_settings();
        settings.bucket = bucket.clone();
        let store = gitclaw_storage::S3Backend::new(settings).await.unwrap();
        use gitclaw_storage::ObjectStorageBackend;
        let stored = store.get(&key).await.expect("the loose object is stored");
        let mut damaged = stored.to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        let options = gitclaw_storage::PutOptions::default();
        store.put(&key, damaged.into(), &options).await.unwrap();
    });
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains(&format!("acme/app: loose object {blob}")),
        "{said}"
    );
}

/// Refs written behind the server's back (in the database): a ref that
/// clashes with a branch, and a branch at a tree, are named with what to do;
/// deleted through the API as the message says, fsck passes again.
#[test]
fn fsck_names_stored_refs_no_client_could_fetch() {
    let bucket = fresh_bucket();
    let mut env = s3_process_env(&bucket);
    let database = postgres_database();
    env.push(("DATABASE_URL", database.clone()));
    let server = ServerProcess::start(&env);
    let url = server.create_repo("acme", "app");
    let (_work, src) = pushed_with_a_loose_file(&url);
    let (status, body) = http(server.addr, "GET", "/api/v1/repos/acme/app", &[], b"");
    assert_eq!(status, 200);
    let repo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let repo_id = repo["id"].as_str().unwrap();
    let main = git(&src, &["rev-parse", "main"]).trim().to_string();
    let tree = git(&src, &["rev-parse", "main^{tree}"]).trim().to_string();
    psql(
        &database,
        &format!(
            "INSERT INTO refs (repo_id, name, oid) VALUES \
             ('{repo_id}', 'refs/heads/main/x', '{main}'), ('{repo_id}', 'refs/heads/tree', '{tree}')"
        ),
    );
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("acme/app: refs refs/heads/main and refs/heads/main/x clash"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "acme/app: branch refs/heads/tree names {tree}, a tree, not a commit"
        )),
        "{said}"
    );
    // The objects themselves are fine: only the two refs are named.
    assert_eq!(
        said.lines().filter(|l| l.starts_with("acme/app: ")).count(),
        2,
        "{said}"
    );

    let updates = serde_json::json!({"updates": [
        {"name": "refs/heads/main/x", "old": main, "new": null},
        {"name": "refs/heads/tree", "old": tree, "new": null},
    ]});
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/repos/acme/app/refs",
        &[("Content-Type", "application/json")],
        updates.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok && said.contains("acme/app: ok: "), "{said}");

    // Compacted, the repository's commit-graph is in the bucket, read by
    // ranges on S3 and downloaded whole by fsck: no false alarm.
    let out = server.command(&["gc", "acme/app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let graphs = psql(
        &database,
        &format!("SELECT count(*) FROM packs WHERE repo_id = '{repo_id}' AND graph_bytes > 0"),
    );
    assert_eq!(graphs.trim(), "1", "compaction recorded a commit-graph");
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok && said.contains("acme/app: ok: "), "{said}");
}

/// The offset of chunk `id` in the commit-graph `file`, from its chunk table.
fn graph_chunk(file: &[u8], id: &[u8; 4]) -> usize {
    assert_eq!(&file[..4], b"CGPH");
    let chunks = usize::from(file[6]);
    (0..chunks)
        .map(|i| &file[8 + 12 * i..8 + 12 * (i + 1)])
        .find(|entry| &entry[..4] == id)
        .map(|entry| u64::from_be_bytes(entry[4..12].try_into().unwrap()) as usize)
        .expect("the chunk")
}

/// The commit-graph compaction writes beside its pack is checked too: a
/// commit's time changed in it (what walks read instead of the commit) is
/// named, from the commit's own, and the stored file fails its checksum; a
/// graph cut short is named, not a crash.
#[test]
fn fsck_checks_the_commit_graph_compaction_wrote() {
    let server = ServerProcess::start(&[]);
    let url = server.create_repo("acme", "app");
    let (_work, _src) = pushed_with_a_loose_file(&url);
    let out = server.command(&["gc", "acme/app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let graphs = files_ending(server.data.path(), ".graph");
    assert_eq!(graphs.len(), 1, "compaction wrote a commit-graph");
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok && said.contains("acme/app: ok: "), "{said}");

    let stored = std::fs::read(&graphs[0]).unwrap();
    let mut changed = stored.clone();
    // The first commit's data: tree (20), parents (8), then generation and
    // time in 8 bytes, the time's lowest byte last.
    let time_end = graph_chunk(&stored, b"CDAT") + 36;
    changed[time_end - 1] ^= 1;
    std::fs::write(&graphs[0], &changed).unwrap();
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(!ok, "{said}");
    assert!(said.contains("commit-graph: commit "), "{said}");
    assert!(said.contains(" in the graph; "), "{said}");
    assert!(said.contains("checksum does not match"), "{said}");

    std::fs::write(&graphs[0], &stored[..stored.len() / 2]).unwrap();
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("acme/app: pack-") && said.contains(".graph: the checksum does not match"),
        "{said}"
    );

    std::fs::write(&graphs[0], &stored).unwrap();
    let (ok, said) = fsck(&server, &["acme/app"]);
    assert!(ok, "restored: {said}");
}
