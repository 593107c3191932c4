//! `GET /metrics`: what a push, a full clone and a shallow clone leave in the
//! counters an operator scrapes; `promtool check metrics` finds no problem with
//! the text; and on S3 the object-store requests counted are exactly the
//! requests the store saw (each attempt and each part).

mod common;

use std::{collections::HashMap, process::Command, time::Duration};

use common::proxy::{Fault, FaultProxy};
use common::wait::wait_until;
use common::*;

/// Samples of the exposition text: `name{labels}` → value.
fn scrape(addr: std::net::SocketAddr) -> (String, HashMap<String, f64>) {
    let (status, body) = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).expect("UTF-8");
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect();
    (text, samples)
}

/// The sum of every sample of `name` whose labels include each of `labels`.
fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(key, _)| {
            key.split('{').next() == Some(name) && labels.iter().all(|l| key.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn a_push_and_two_clones_show_in_the_metrics_and_promtool_accepts_them() {
    let pushed = Pushed::fixture("mia", "seen", 4);
    let server = &pushed.server;
    let work = pushed.work.path();
    git(
        work,
        &[
            "clone",
            "-q",
            &pushed.url,
            work.join("full").to_str().unwrap(),
        ],
    );
    git(
        work,
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &pushed.url,
            work.join("shallow").to_str().unwrap(),
        ],
    );
    // A fetch's last bytes can reach git before the server has recorded it:
    // wait until nothing is in flight, then count.
    wait_until(Duration::from_secs(30), "no git request in flight", || {
        sum(
            &scrape(server.addr).1,
            "gitclaw_git_requests_in_flight",
            &[],
        ) == 0.0
    });
    let (text, samples) = scrape(server.addr);

    // One push; git may send a probe request before a big pack, so count
    // requests: at least one, and every one of them a success.
    let pushes = sum(
        &samples,
        "gitclaw_git_requests_total",
        &["service=\"receive-pack\""],
    );
    let ok_pushes = sum(
        &samples,
        "gitclaw_git_requests_total",
        &["service=\"receive-pack\"", "outcome=\"ok\""],
    );
    assert!(ok_pushes >= 1.0, "{text}");
    assert_eq!(ok_pushes, pushes, "{text}");
    let fetches = |shape: &str| {
        sum(
            &samples,
            "gitclaw_fetches_total",
            &[&format!("shape=\"{shape}\"")],
        )
    };
    assert_eq!(fetches("full"), 1.0, "{text}");
    assert_eq!(fetches("shallow"), 1.0, "{text}");
    assert_eq!(
        sum(&samples, "gitclaw_fetch_pack_sources_total", &[]),
        2.0,
        "one pack source per clone: {text}"
    );
    assert!(sum(&samples, "gitclaw_pack_sent_bytes_total", &[]) > 0.0);
    assert!(sum(&samples, "gitclaw_pack_received_bytes_total", &[]) > 0.0);
    // The embedded store's calls are counted too: the push stored a pack.
    assert!(
        sum(
            &samples,
            "gitclaw_store_requests_total",
            &["operation=\"put_file\"", "status=\"ok\""]
        ) >= 2.0,
        "{text}"
    );
    assert!(
        sum(
            &samples,
            "gitclaw_store_bytes_total",
            &["direction=\"written\""]
        ) > 0.0,
        "{text}"
    );
    let upload_packs = sum(
        &samples,
        "gitclaw_git_requests_total",
        &["service=\"upload-pack\"", "outcome=\"ok\""],
    );
    assert!(upload_packs >= 2.0, "{text}");
    assert_eq!(
        sum(
            &samples,
            "gitclaw_git_request_duration_seconds_count",
            &["service=\"upload-pack\""]
        ),
        upload_packs,
        "every request is timed once: {text}"
    );
    assert_eq!(
        sum(&samples, "gitclaw_git_requests_in_flight", &[]),
        0.0,
        "{text}"
    );
    assert!(
        sum(
            &samples,
            "gitclaw_http_requests_total",
            &["route=\"/{owner}/{repo}/info/refs\"", "status=\"200\""]
        ) >= 3.0,
        "{text}"
    );
    // The push holds exactly what main reaches, so the full clone is that
    // pack as stored; the shallow one is generated, looked up in the response
    // cache first.
    assert_eq!(
        sum(
            &samples,
            "gitclaw_fetch_pack_sources_total",
            &["source=\"stored\""]
        ),
        1.0,
        "{text}"
    );
    assert!(
        sum(
            &samples,
            "gitclaw_cache_lookups_total",
            &["cache=\"responses\""]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sum(
            &samples,
            "gitclaw_cache_lookups_total",
            &["cache=\"objects\""]
        ) > 0.0,
        "the walks' object cache is counted: {text}"
    );
    assert!(
        sum(
            &samples,
            "gitclaw_response_cache_generated_bytes_total",
            &[]
        ) > 0.0,
        "{text}"
    );
    assert_eq!(
        sum(&samples, "gitclaw_push_slots_in_use", &[]),
        0.0,
        "{text}"
    );
    // Every metadata operation is timed: the one push committed once, and the
    // push's ref advertisement and the first clone's listed refs (the second
    // clone's came from the instance's memory: the refs had not changed).
    let db = |operation: &str, outcome: &str| {
        sum(
            &samples,
            "gitclaw_db_operation_duration_seconds_count",
            &[
                &format!("operation=\"{operation}\""),
                &format!("outcome=\"{outcome}\""),
            ],
        )
    };
    assert_eq!(db("commit_push", "ok"), 1.0, "{text}");
    assert!(db("list_refs", "ok") >= 2.0, "{text}");
    assert!(
        sum(
            &samples,
            "gitclaw_cache_lookups_total",
            &["cache=\"metadata_local\"", "result=\"hit\""]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "gitclaw_db_operation_duration_seconds_count",
            &["outcome=\"error\""]
        ),
        0.0,
        "{text}"
    );
    // Repository names appear only in the per-repository sizes, which are the
    // metadata's own figures.
    for line in text.lines().filter(|l| l.contains("mia/seen")) {
        assert!(line.starts_with("gitclaw_repository_"), "{line}");
    }
    let stats = server
        .block_on(server.state.meta.repo_stats(&server.repo_id("mia", "seen")))
        .unwrap();
    assert_eq!(
        sum(
            &samples,
            "gitclaw_repository_objects",
            &["repository=\"mia/seen\""]
        ),
        stats.object_count as f64,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "gitclaw_repository_stored_bytes",
            &["repository=\"mia/seen\""]
        ),
        stats.stored_bytes as f64,
        "{text}"
    );

    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("promtool runs (scripts/test.sh installs Debian's prometheus package)");
    assert!(
        check.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A server on Garage + PostgreSQL with a fault-injecting proxy before the
/// store (three retries, short backoff).
fn server_behind_proxy() -> (FaultProxy, Server) {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let mut s3 = s3_settings();
    s3.endpoint = Some(proxy.endpoint());
    s3.max_retries = 3;
    s3.retry_max_backoff = Duration::from_millis(200);
    let database_url = postgres_database();
    let server = Server::start_with(|config| {
        config.s3 = Some(s3);
        config.database_url = database_url;
    });
    (proxy, server)
}

#[test]
fn store_requests_counted_are_the_requests_the_store_saw() {
    let (proxy, server) = server_behind_proxy();
    let counted =
        |samples: &HashMap<String, f64>| sum(samples, "gitclaw_store_requests_total", &[]);
    let before = counted(&scrape(server.addr).1);
    let seen_before = proxy.seen().len();

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 12);
    let url = server.create_repo("mia", "counted");
    push_everything(&src, &url);
    // Some requests fail once and are retried: each attempt is a request.
    proxy.inject(Fault::InternalError, &["GET"], 0, Some(2));
    git(
        work.path(),
        &["clone", "-q", &url, work.path().join("c").to_str().unwrap()],
    );
    proxy.clear();

    let (text, samples) = scrape(server.addr);
    let seen = proxy.seen().len() - seen_before;
    assert!(seen > 0);
    assert_eq!(
        counted(&samples) - before,
        seen as f64,
        "requests counted vs requests the store saw: {text}"
    );
    assert_eq!(
        sum(
            &samples,
            "gitclaw_store_request_duration_seconds_count",
            &[]
        ),
        counted(&samples),
        "every request is timed: {text}"
    );
    assert_eq!(
        sum(&samples, "gitclaw_store_retries_total", &[]),
        2.0,
        "{text}"
    );
    // The push (more than ten objects) stored one pack and its index: the bytes
    // written are exactly what the metadata records for them.
    let stats = server
        .block_on(
            server
                .state
                .meta
                .repo_stats(&server.repo_id("mia", "counted")),
        )
        .unwrap();
    assert_eq!(
        sum(
            &samples,
            "gitclaw_store_bytes_total",
            &["direction=\"written\""]
        ),
        stats.stored_bytes as f64,
        "bytes written are the pack and index the metadata records: {text}"
    );
    assert!(
        sum(
            &samples,
            "gitclaw_store_bytes_total",
            &["direction=\"read\""]
        ) > 0.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "gitclaw_store_requests_total",
            &["status=\"error\""]
        ),
        2.0,
        "{text}"
    );
}

#[test]
fn a_git_request_slower_than_the_threshold_logs_one_warning_naming_it() {
    let mut slow = ServerProcess::start(&[("GITCLAW_SLOW_REQUEST_MS", "1".to_string())]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = slow.create_repo("mia", "slow");
    push_everything(&src, &url);
    git(
        work.path(),
        &["clone", "-q", &url, work.path().join("c").to_str().unwrap()],
    );
    let warning = slow.log.wait_for(Duration::from_secs(30), |line| {
        line.contains("WARN") && line.contains("slow git request: upload-pack of mia/slow took")
    });
    assert!(warning.contains("request_id="), "{warning}");
    assert!(warning.contains("threshold_ms=1"), "{warning}");
    let ms: u64 = warning
        .split("took ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {warning}"));
    assert!(ms >= 1, "{warning}");
    let _ = slow.child.kill();

    // Under the default threshold the same work says nothing.
    let mut quiet = ServerProcess::start(&[]);
    let url = quiet.create_repo("mia", "quiet");
    push_everything(&src, &url);
    git(
        work.path(),
        &["clone", "-q", &url, work.path().join("q").to_str().unwrap()],
    );
    let _ = quiet.child.kill();
    let lines = quiet.log.until_closed(Duration::from_secs(30));
    assert!(
        !lines.iter().any(|l| l.contains("slow git request")),
        "{lines:?}"
    );
}

#[test]
fn only_the_largest_repositories_are_reported_one_by_one() {
    let server = Server::start_with(|config| config.metrics_repos = 1);
    let work = tempfile::tempdir().unwrap();
    for (name, commits) in [("small", 1), ("large", 12)] {
        let src = work.path().join(name);
        fixture_repo(&src, commits);
        let url = server.create_repo("mia", name);
        push_everything(&src, &url);
    }
    let (text, samples) = scrape(server.addr);
    assert!(
        sum(
            &samples,
            "gitclaw_repository_stored_bytes",
            &["repository=\"mia/large\""]
        ) > 0.0,
        "{text}"
    );
    assert!(!text.contains("mia/small"), "past the cap: {text}");
}

#[test]
fn with_a_metrics_token_only_a_scraper_that_sends_it_reads_the_metrics() {
    let token = "scrape-0123456789abcdef";
    let server = Server::start_with(|config| config.metrics_token = Some(token.to_string()));
    let (status, head, _) = http_full(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    let wrong = [("Authorization", "Bearer scrape-0123456789abcdeX")];
    assert_eq!(http(server.addr, "GET", "/metrics", &wrong, b"").0, 401);
    let bearer = format!("Bearer {token}");
    let (status, body) = http(
        server.addr,
        "GET",
        "/metrics",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("gitclaw_build_info"));
    // The rest of the server is not behind it.
    assert_eq!(http(server.addr, "GET", "/healthz", &[], b"").0, 200);
}

#[test]
fn with_a_metrics_listener_the_metrics_leave_the_git_port_for_their_own() {
    let mut server = ServerProcess::start(&[("GITCLAW_METRICS_LISTEN", "127.0.0.1:0".into())]);
    let line = server.log.wait_for(Duration::from_secs(30), |l| {
        l.contains("metrics are served")
    });
    let metrics: std::net::SocketAddr = line
        .split_once("listen=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert_ne!(metrics, server.addr);
    // The git port no longer shows them; the probes stay on both.
    assert_eq!(http(server.addr, "GET", "/metrics", &[], b"").0, 404);
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(http(server.addr, "GET", probe, &[], b"").0, 200, "{probe}");
        assert_eq!(http(metrics, "GET", probe, &[], b"").0, 200, "{probe}");
    }
    // Only operational routes live there: no git, no API.
    assert_eq!(http(metrics, "GET", "/api/v1/repos", &[], b"").0, 404);
    // Traffic on the git port is what the metrics port reports.
    let url = server.create_repo("mia", "watched");
    let dir = tempfile::tempdir().expect("temp dir");
    git(dir.path(), &["ls-remote", &url]);
    let (_, samples) = scrape(metrics);
    assert_eq!(
        sum(
            &samples,
            "gitclaw_git_requests_total",
            &["service=\"info-refs\""]
        ),
        1.0
    );
}

#[test]
fn a_database_statement_slower_than_the_threshold_logs_a_warning_with_its_sql() {
    // Creating the schema of a fresh PostgreSQL database takes well over 1 ms.
    let mut server = ServerProcess::start(&[
        ("DATABASE_URL", postgres_database()),
        ("GITCLAW_SLOW_DB_MS", "1".to_string()),
    ]);
    let warning = server.log.wait_for(Duration::from_secs(30), |line| {
        line.contains("WARN") && line.contains("slow statement")
    });
    assert!(warning.contains("elapsed"), "{warning}");
    let _ = server.child.kill();
}

/// One step of a random workload against one repository.
#[derive(Debug, Clone)]
enum Step {
    /// Commit `files` new files and push (ten or fewer objects go loose).
    Push {
        files: usize,
    },
    Clone,
    ShallowClone,
    /// Fetch into the first clone (nothing new, or what the pushes added).
    Fetch,
    /// The next store request fails once with a 500 and is retried.
    Fault,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (1usize..14).prop_map(|files| Step::Push { files }),
        Just(Step::Clone),
        Just(Step::ShallowClone),
        Just(Step::Fetch),
        Just(Step::Fault),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 4, ..Default::default() })]

    /// Over random pushes, clones, fetches and injected failures, the object-store
    /// requests the metrics count are exactly the requests the store saw, each is
    /// timed, each is attributed to the git request that made it, and the
    /// response cache's hits are the clones it answered.
    #[test]
    fn metrics_count_exactly_what_the_store_saw(steps in proptest::collection::vec(step(), 1..6)) {
        let (proxy, server) = server_behind_proxy();
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 2);
        let url = server.create_repo("mia", "random");
        push_everything(&src, &url);
        let first = work.path().join("first");
        git(work.path(), &["clone", "-q", &url, first.to_str().unwrap()]);
        let seen_before = proxy.seen().len();
        let before = scrape(server.addr).1;
        let counted = |s: &HashMap<String, f64>| sum(s, "gitclaw_store_requests_total", &[]);
        let attributed = |s: &HashMap<String, f64>| sum(s, "gitclaw_git_request_store_requests_sum", &[]);
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Push { files } => {
                    for f in 0..*files {
                        std::fs::write(src.join(format!("s{i}-{f}.txt")), format!("{i} {f}")).unwrap();
                    }
                    git(&src, &["add", "."]);
                    git(&src, &["commit", "-qm", &format!("step {i}")]);
                    git(&src, &["push", "-q", &url, "main"]);
                }
                Step::Clone | Step::ShallowClone => {
                    let dest = work.path().join(format!("c{i}"));
                    let mut args = vec!["clone", "-q"];
                    if matches!(step, Step::ShallowClone) {
                        args.extend(["--depth", "1"]);
                    }
                    args.extend([url.as_str(), dest.to_str().unwrap()]);
                    git(work.path(), &args);
                }
                Step::Fetch => {
                    git(&first, &["fetch", "-q", "origin"]);
                }
                Step::Fault => proxy.inject(Fault::InternalError, &[], 0, Some(1)),
            }
        }
        proxy.clear();
        wait_until(Duration::from_secs(30), "no git request in flight", || {
            sum(&scrape(server.addr).1, "gitclaw_git_requests_in_flight", &[]) == 0.0
        });
        let (text, after) = scrape(server.addr);
        let requests: Vec<String> = proxy.seen()[seen_before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        let seen = requests.len() as f64;
        proptest::prop_assert_eq!(
            counted(&after) - counted(&before), seen,
            "counted vs seen {:?}:\n{}", requests, text
        );
        proptest::prop_assert_eq!(
            attributed(&after) - attributed(&before), seen,
            "attributed vs seen {:?}:\n{}", requests, text
        );
        proptest::prop_assert_eq!(
            sum(&after, "gitclaw_store_request_duration_seconds_count", &[]),
            counted(&after),
            "{}", text
        );
        // Each clone answered from the response cache is one hit, and no
        // lookup happens but for a fetch that sends a pack.
        let delta = |name: &str, labels: &[&str]| sum(&after, name, labels) - sum(&before, name, labels);
        proptest::prop_assert_eq!(
            delta("gitclaw_cache_lookups_total", &["cache=\"responses\"", "result=\"hit\""]),
            delta("gitclaw_fetch_pack_sources_total", &["source=\"response_cache\""]),
            "{}", text
        );
        proptest::prop_assert!(
            delta("gitclaw_cache_lookups_total", &["cache=\"responses\""])
                <= delta("gitclaw_fetch_pack_sources_total", &[]),
            "{}", text
        );
    }
}
