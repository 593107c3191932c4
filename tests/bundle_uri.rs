//! Bundle URIs (protocol v2 `bundle-uri`): a git clone that asks
//! (`transfer.bundleURI=true`) downloads the repository's compacted pack as a
//! bundle, then fetches only what was pushed after it.

mod common;

use std::path::{Path, PathBuf};

use common::{proxy::*, *};

/// The sum of every series of `name` in the server's metrics.
fn metric_sum(addr: std::net::SocketAddr, name: &str) -> f64 {
    let (status, body) = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Objects `git rev-list --objects` lists in `dir` for `args`.
fn count_objects(dir: &Path, args: &[&str]) -> usize {
    let mut all = vec!["rev-list", "--objects"];
    all.extend_from_slice(args);
    git(dir, &all).lines().count()
}

fn compact(s: &Pushed, owner: &str, name: &str) {
    let repo = s
        .server
        .block_on(s.server.state.meta.get_repo(owner, name))
        .unwrap()
        .unwrap();
    let outcome = s
        .server
        .block_on(gitclaw_server::service::gc::gc_repo(&s.server.state, &repo))
        .unwrap();
    assert!(outcome.closure_recorded, "the compacted pack is a closure");
}

/// `git clone` of `s` into `name` beside its source, asking for bundles. The
/// clone must succeed and be whole: the source's `main` and tags, `git fsck
/// --strict` clean. Returns where it is and whether it kept a bundle's refs.
fn bundle_clone(s: &Pushed, name: &str) -> (PathBuf, bool) {
    let dir = s.work.path().join(name);
    git(
        s.work.path(),
        &[
            "-c",
            "transfer.bundleURI=true",
            "clone",
            "-q",
            &s.url,
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(
        git(&dir, &["rev-parse", "HEAD"]),
        git(&s.src, &["rev-parse", "main"])
    );
    assert_eq!(refs_of(&dir, "refs/tags"), refs_of(&s.src, "refs/tags"));
    git(&dir, &["fsck", "--strict", "--no-progress"]);
    let unbundled = !refs_of(&dir, "refs/bundles/").is_empty();
    (dir, unbundled)
}

/// The answer of `owner/name` (at `server`) to `command=bundle-uri`.
fn bundle_list(server: &Server, repo: &str, auth: &[(&str, &str)]) -> (u16, String) {
    let mut headers = vec![("Git-Protocol", "version=2")];
    headers.extend_from_slice(auth);
    let (status, body) = http(
        server.addr,
        "POST",
        &format!("/{repo}.git/git-upload-pack"),
        &headers,
        b"0017command=bundle-uri\n00010000",
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The URI of the one bundle `repo` offers, relative to its git URL.
fn offered_uri(server: &Server, repo: &str, auth: &[(&str, &str)]) -> String {
    let (status, list) = bundle_list(server, repo, auth);
    assert_eq!(status, 200);
    list.split(".uri=")
        .nth(1)
        .and_then(|rest| rest.split('\n').next())
        .unwrap_or_else(|| panic!("a bundle is offered: {list}"))
        .to_string()
}

#[test]
fn a_clone_that_asks_downloads_the_bundle_then_fetches_only_what_is_newer() {
    for backend in BACKENDS {
        clone_through_a_bundle(backend);
    }
}

/// On the filesystem store the bundle's pack is read from its file; on S3, by
/// ranged reads.
fn clone_through_a_bundle(backend: Backend) {
    let s = Pushed::fixture_with(
        |config| {
            use_backend(config, backend);
            config.bundles.min_bytes = 0;
        },
        "bundles",
        "seed",
        30,
    );
    compact(&s, "bundles", "seed");
    let heads_at_gc = refs_of(&s.src, "refs/heads");
    let all_at_gc: Vec<String> = refs_of(&s.src, "refs/")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    // Pushed after the compaction: in no bundle.
    for n in 0..3 {
        commit_file(&s.src, "after.txt", &format!("after {n}\n"), "after gc");
    }
    git(&s.src, &["push", "-q", &s.url, "main"]);

    // What the bundle is: the refs as compacted, a pack git accepts.
    let uri = offered_uri(&s.server, "bundles/seed", &[]);
    assert!(uri.starts_with("info/bundles/pack-"), "{uri}");
    let (status, head, bundle) = http_full(
        s.server.addr,
        "GET",
        &format!("/bundles/seed.git/{uri}"),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{head}\n{}", String::from_utf8_lossy(&bundle));
    let file = s.work.path().join("seed.bundle");
    std::fs::write(&file, &bundle).unwrap();
    let listed_heads: Vec<String> = {
        let mut lines: Vec<String> = git(&s.src, &["bundle", "list-heads", file.to_str().unwrap()])
            .lines()
            .filter(|l| l.contains(" refs/heads/"))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        listed_heads, heads_at_gc,
        "the bundle names the heads as compacted"
    );
    let empty = s.work.path().join("empty");
    git(
        s.work.path(),
        &["init", "-q", "--bare", empty.to_str().unwrap()],
    );
    git(&empty, &["bundle", "verify", "-q", file.to_str().unwrap()]);
    git(&empty, &["bundle", "unbundle", file.to_str().unwrap()]);
    git(&empty, &["fsck", "--no-progress", "--no-dangling"]);
    let (_, again_head, again) = http_full(
        s.server.addr,
        "GET",
        &format!("/bundles/seed.git/{uri}"),
        &[],
        b"",
    );
    assert_eq!(again, bundle, "a bundle's bytes never change");
    assert!(again_head.to_ascii_lowercase().contains("immutable"));
    let etag = again_head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap_or_else(|| panic!("an ETag: {again_head}"))
        .to_string();
    let downloads = metric_sum(s.server.addr, "gitclaw_bundle_downloads_total");
    let (status, _, body) = http_full(
        s.server.addr,
        "GET",
        &format!("/bundles/seed.git/{uri}"),
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(
        (status, body.len()),
        (304, 0),
        "a cached copy is still good"
    );
    let (status, head, body) = http_full(
        s.server.addr,
        "HEAD",
        &format!("/bundles/seed.git/{uri}"),
        &[],
        b"",
    );
    assert_eq!((status, body.len()), (200, 0));
    assert!(
        head.contains(&format!("content-length: {}", bundle.len())),
        "{head}"
    );
    assert_eq!(
        metric_sum(s.server.addr, "gitclaw_bundle_downloads_total"),
        downloads,
        "neither is a download"
    );

    // The clone: the bundle first, then a fetch of what is newer.
    let downloads = metric_sum(s.server.addr, "gitclaw_bundle_downloads_total");
    let sent_before = metric_sum(s.server.addr, "gitclaw_pack_sent_objects_total");
    let (dir, _) = bundle_clone(&s, "clone");
    assert_eq!(
        metric_sum(s.server.addr, "gitclaw_bundle_downloads_total"),
        downloads + 1.0,
        "the clone downloaded the bundle"
    );
    let unbundled: Vec<String> = refs_of(&dir, "refs/bundles/")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    let head_oids: Vec<String> = heads_at_gc
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert!(
        head_oids.iter().all(|oid| unbundled.contains(oid)),
        "the clone kept the bundle's heads: {unbundled:?}"
    );
    // The fetch after the bundle sent what is newer than it: at least what no
    // ref of the bundle reaches, at most what its heads do not reach (git
    // before 2.50 keeps only the heads of a bundle as refs to negotiate with).
    let sent =
        (metric_sum(s.server.addr, "gitclaw_pack_sent_objects_total") - sent_before) as usize;
    let mut not_all = vec!["--all", "--not"];
    not_all.extend(all_at_gc.iter().map(String::as_str));
    let mut not_heads = vec!["--all", "--not"];
    not_heads.extend(head_oids.iter().map(String::as_str));
    let (least, most) = (
        count_objects(&s.src, &not_all),
        count_objects(&s.src, &not_heads),
    );
    let total = count_objects(&s.src, &["--all"]);
    assert!(least > 0 && most < total / 4, "{least} {most} {total}");
    assert!(
        (least..=most).contains(&sent),
        "the fetch sent {sent} objects; expected {least} to {most} of {total}"
    );
}

#[test]
fn no_bundle_is_offered_when_turned_off_too_small_or_before_compaction() {
    // Pushed as loose objects and then a pack that leans on them: no pack is
    // the closure of refs, so the list is empty (a flush) and the clone goes
    // on without a bundle.
    let server = Server::start_with(|config| config.bundles.min_bytes = 0);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 5);
    let url = server.create_repo("bundles", "fresh");
    let root = git(&src, &["rev-list", "--max-parents=0", "main"]);
    git(
        &src,
        &[
            "push",
            "-q",
            &url,
            &format!("{}:refs/heads/main", root.trim()),
        ],
    );
    push_everything(&src, &url);
    let s = Pushed {
        server,
        work,
        src,
        url,
    };
    let ask = |s: &Pushed, repo: &str| bundle_list(&s.server, &format!("bundles/{repo}"), &[]);
    let before = ask(&s, "fresh");
    assert_eq!(before, (200, "0000".to_string()));
    assert!(!bundle_clone(&s, "clone").1, "no bundle to keep");
    compact(&s, "bundles", "fresh");
    assert_ne!(ask(&s, "fresh").1, "0000", "offered once compacted");
    // A name that is no bundle of the repository.
    let (status, _) = http(
        s.server.addr,
        "GET",
        &format!(
            "/bundles/fresh.git/info/bundles/pack-{}.bundle",
            "0".repeat(40)
        ),
        &[],
        b"",
    );
    assert_eq!(status, 404);
    let (status, _) = http(
        s.server.addr,
        "GET",
        "/bundles/fresh.git/info/bundles/..%2Fpack.bundle",
        &[],
        b"",
    );
    assert_eq!(status, 404);

    // Smaller than GITCLAW_BUNDLE_MIN_BYTES: not offered.
    let small = Pushed::fixture_with(
        |config| config.bundles.min_bytes = 1 << 30,
        "bundles",
        "small",
        5,
    );
    compact(&small, "bundles", "small");
    assert_eq!(ask(&small, "small"), (200, "0000".to_string()));

    // Turned off: not advertised, the command refused, no download served.
    let off = Pushed::fixture_with(
        |config| {
            config.bundles.offer = false;
            config.bundles.min_bytes = 0;
        },
        "bundles",
        "off",
        5,
    );
    compact(&off, "bundles", "off");
    let (_, caps) = http(
        off.server.addr,
        "GET",
        "/bundles/off.git/info/refs?service=git-upload-pack",
        &[("Git-Protocol", "version=2")],
        b"",
    );
    assert!(!String::from_utf8_lossy(&caps).contains("bundle-uri"));
    let (_, on_caps) = http(
        s.server.addr,
        "GET",
        "/bundles/fresh.git/info/refs?service=git-upload-pack",
        &[("Git-Protocol", "version=2")],
        b"",
    );
    assert!(String::from_utf8_lossy(&on_caps).contains("bundle-uri"));
    let (_, refused) = ask(&off, "off");
    assert!(
        refused.contains("ERR") && refused.contains("unknown command 'bundle-uri'"),
        "{refused}"
    );
    assert!(!bundle_clone(&off, "clone").1, "no bundle to keep");
    assert_eq!(
        metric_sum(off.server.addr, "gitclaw_bundle_downloads_total"),
        0.0
    );
}

#[test]
fn a_private_repository_s_bundle_needs_the_credentials_its_clone_has() {
    const ADMIN: &str = "bundle-admin-token";
    let server = Server::start_with(|config| {
        config.admin_token = Some(ADMIN.into());
        config.bundles.min_bytes = 0;
    });
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some(ADMIN),
        r#"{"owner":"bundles","name":"secret","private":true}"#,
    );
    assert_eq!(status, 201);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 5);
    let url = format!("http://x:{ADMIN}@{}/bundles/secret.git", server.addr);
    push_everything(&src, &url);
    let s = Pushed {
        server,
        work,
        src,
        url,
    };
    compact(&s, "bundles", "secret");
    let bearer = format!("Bearer {ADMIN}");
    let uri = offered_uri(&s.server, "bundles/secret", &[("Authorization", &bearer)]);
    let path = format!("/bundles/secret.git/{uri}");
    let (status, head, _) = http_full(s.server.addr, "GET", &path, &[], b"");
    assert_eq!(status, 401, "no credentials, no bundle");
    assert!(head
        .to_ascii_lowercase()
        .contains("www-authenticate: basic"));
    let (status, head, _) = http_full(
        s.server.addr,
        "GET",
        &path,
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    assert!(head.contains("private"), "not for shared caches: {head}");

    // git carries the clone's credentials over to the bundle's URL.
    assert!(
        bundle_clone(&s, "clone").1,
        "the clone kept the bundle's refs"
    );
    assert_eq!(
        metric_sum(s.server.addr, "gitclaw_bundle_downloads_total"),
        2.0,
        "the clone downloaded the bundle"
    );
}

#[test]
fn a_pack_compacted_before_names_were_kept_is_offered_after_the_next_gc() {
    let s = Pushed::fixture_with(
        |config| {
            use_backend(config, Backend::Postgres);
            config.bundles.min_bytes = 0;
        },
        "bundles",
        "older",
        5,
    );
    compact(&s, "bundles", "older");
    // What a database written before the refs' names were recorded holds.
    let id = s.server.repo_id("bundles", "older");
    psql(
        &s.server.state.config.database_url,
        &format!("DELETE FROM pack_closure_refs WHERE repo_id = '{id}'"),
    );
    assert_eq!(
        bundle_list(&s.server, "bundles/older", &[]),
        (200, "0000".to_string()),
        "no names, no bundle"
    );
    // The repository is compacted already: gc records the names alone.
    compact(&s, "bundles", "older");
    offered_uri(&s.server, "bundles/older", &[]);
    assert!(
        bundle_clone(&s, "clone").1,
        "the clone kept the bundle's refs"
    );
}

#[test]
fn a_bundle_download_that_fails_part_way_leaves_an_ordinary_clone() {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let mut s3 = s3_settings();
    s3.endpoint = Some(proxy.endpoint());
    // A failed read is not retried: the download fails where the fault hits.
    s3.max_retries = 0;
    let s = Pushed::fixture_with(
        |config| {
            config.s3 = Some(s3);
            config.bundles.min_bytes = 0;
        },
        "bundles",
        "faulty",
        5,
    );
    compact(&s, "bundles", "faulty");
    // An ordinary clone first: the pack is then in the server's download
    // cache, and the bundle's ranged reads are the only reads of the store.
    clone_checked(s.work.path(), &s.url, &s.work.path().join("warm"));
    let packs = s
        .server
        .block_on(
            s.server
                .state
                .meta
                .list_packs(&s.server.repo_id("bundles", "faulty")),
        )
        .unwrap();
    let pack_bytes = packs.iter().map(|p| p.pack_bytes).max().unwrap();
    assert!(
        pack_bytes > 3 << 20,
        "the pack takes several 1 MiB reads: {pack_bytes}"
    );
    // The third read of the store fails.
    proxy.inject(Fault::InternalError, &["GET"], 2, Some(1));
    let (_, unbundled) = bundle_clone(&s, "clone");
    assert_eq!(
        metric_sum(s.server.addr, "gitclaw_bundle_downloads_total"),
        1.0,
        "the clone tried the bundle"
    );
    let failed: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .map(|r| r.path)
        .collect();
    assert!(
        failed.len() == 1 && failed[0].contains(".pack?"),
        "a read of the bundle's pack failed: {failed:?}"
    );
    assert!(!unbundled, "nothing of the broken bundle was kept");
}
