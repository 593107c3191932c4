//! A real Prometheus (Debian's `prometheus` package) scrapes a GitClaw on
//! Garage + PostgreSQL; after a push, a full clone, a shallow clone and an
//! injected object-store fault, PromQL through Prometheus's HTTP API gives the
//! expected counts and a 99th percentile of object-store latency; every query
//! of the Grafana dashboard (`config/grafana-dashboard.json`) is one
//! Prometheus accepts, over metrics the server exports.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::proxy::{Fault, FaultProxy};
use common::wait::wait_until;
use common::*;

/// A Prometheus scraping `target` every second, killed on drop.
struct Prometheus {
    child: Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: gitclaw\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // Prometheus cannot report a port it picked: take a free one, and
        // another if something grabbed it in between.
        for _ in 0..5 {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap();
            let mut child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus runs (scripts/test.sh installs Debian's prometheus package)");
            let mut up = false;
            wait_until(
                Duration::from_secs(30),
                "Prometheus to answer or exit",
                || {
                    if let Ok(Some(_)) = child.try_wait() {
                        return true;
                    }
                    up = std::net::TcpStream::connect(addr).is_ok();
                    up
                },
            );
            if up {
                return Prometheus {
                    child,
                    addr,
                    _dir: dir,
                };
            }
        }
        panic!("Prometheus did not start on any of five ports");
    }

    /// The single value of an instant `query`, if it has one.
    fn value(&self, query: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", encode(query));
        let (status, body) = http(self.addr, "GET", &path, &[], b"");
        if status == 503 {
            // Still starting up.
            return None;
        }
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let result = answer["data"]["result"].as_array()?;
        let sample = result.first()?;
        sample["value"][1].as_str()?.parse().ok()
    }

    /// Wait until `query` has a value that `ok` accepts; return it.
    fn settle(&self, query: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let mut last = None;
        wait_until(Duration::from_secs(60), query, || {
            last = self.value(query);
            last.is_some_and(&ok)
        });
        last.unwrap()
    }
}

/// Percent-encode a query string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn clone(dir: &Path, url: &str, name: &str, extra: &[&str]) {
    let target = dir.join(name);
    let mut args = vec!["clone", "-q"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[url, target.to_str().unwrap()]);
    git(dir, &args);
}

#[test]
fn prometheus_scrapes_what_a_push_clones_and_a_store_fault_did() {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let mut s3 = s3_settings();
    s3.endpoint = Some(proxy.endpoint());
    s3.retry_max_backoff = Duration::from_millis(200);
    let database_url = postgres_database();
    let server = Server::start_with(|config| {
        config.s3 = Some(s3);
        config.database_url = database_url;
    });
    let prometheus = Prometheus::start(server.addr);
    prometheus.settle("up{job=\"gitclaw\"}", |v| v == 1.0);

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 15);
    let url = server.create_repo("pia", "scraped");
    push_everything(&src, &url);
    clone(work.path(), &url, "full", &[]);
    clone(work.path(), &url, "shallow", &["--depth", "1"]);
    // One upload of the next push fails with a 500 and is retried.
    commit_file(&src, "more.txt", "more", "more");
    proxy.inject(Fault::InternalError, &["PUT"], 0, Some(1));
    git(&src, &["push", "-q", &url, "main"]);
    proxy.clear();

    assert_eq!(
        prometheus.settle("sum(gitclaw_fetches_total{shape=\"full\"})", |v| v >= 1.0),
        1.0
    );
    assert_eq!(
        prometheus.settle("sum(gitclaw_fetches_total{shape=\"shallow\"})", |v| v
            >= 1.0),
        1.0
    );
    assert_eq!(
        prometheus.settle(
            "sum(gitclaw_git_requests_total{service=\"receive-pack\",outcome!=\"ok\"}) or vector(0)",
            |_| true
        ),
        0.0
    );
    assert_eq!(
        prometheus.settle("sum(gitclaw_store_retries_total)", |v| v >= 1.0),
        1.0
    );
    assert_eq!(
        prometheus.settle(
            "sum(gitclaw_store_errors_total{kind=\"connection\"})",
            |v| v >= 1.0
        ),
        1.0
    );
    the_dashboard_queries_what_is_exported(&prometheus, server.addr);
    let p99 = prometheus.settle(
        "histogram_quantile(0.99, sum by (le) (rate(gitclaw_store_request_duration_seconds_bucket[1m])))",
        f64::is_finite,
    );
    assert!(
        p99 > 0.0 && p99 <= 60.0,
        "p99 of object-store latency: {p99}"
    );
}

/// Every PromQL query of the dashboard parses and runs in Prometheus, and each
/// `gitclaw_…` series it reads is one `/metrics` shows (after the traffic above,
/// which includes a fault, so the error and retry families are there too).
fn the_dashboard_queries_what_is_exported(prometheus: &Prometheus, server: std::net::SocketAddr) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(queries.len() >= 15, "the dashboard's queries: {queries:?}");
    let (status, body) = http(server, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let exported: std::collections::HashSet<String> = String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("gitclaw_"))
        .map(|line| line.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    for query in &queries {
        let names = query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("gitclaw_"));
        for name in names {
            assert!(
                exported.contains(name),
                "the dashboard reads {name}, which /metrics does not show (in {query})"
            );
        }
        let (status, body) = http(
            prometheus.addr,
            "GET",
            &format!("/api/v1/query?query={}", encode(query)),
            &[],
            b"",
        );
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "Prometheus refuses {query}: {body}");
        assert!(body.contains("\"status\":\"success\""), "{query}: {body}");
    }
}
