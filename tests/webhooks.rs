//! Webhooks: a repository admin registers a URL; it gets a `ping`, then a
//! signed `push` delivery for every push that moved refs (none for one that
//! moved nothing), retried with the same delivery id when the receiver
//! fails. Run against a real receiver over HTTP, with real git pushes.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const ADMIN: &str = "hooks-admin-0123456789";
const SECRET: &str = "it's a secret";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP receiver on a thread: records every request, and answers each
/// with the next status of `answers` (204 once they run out).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (record, script) = (got.clone(), answers.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    headers.push((name.trim().to_string(), value.trim().to_string()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let status = {
                    let mut script = script.lock().unwrap();
                    if script.is_empty() {
                        204
                    } else {
                        script.remove(0)
                    }
                };
                record.lock().unwrap().push(Received {
                    path,
                    headers,
                    body,
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, got, answers }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Wait for the `n`th request (from 1) to `path`, and return it.
    fn nth(&self, path: &str, n: usize) -> Received {
        let mut found = None;
        wait::wait_until(
            Duration::from_secs(60),
            &format!("delivery {n} to {path}"),
            || {
                let got = self.got.lock().unwrap();
                found = got.iter().filter(|r| r.path == path).nth(n - 1).cloned();
                found.is_some()
            },
        );
        found.unwrap()
    }

    fn count(&self, path: &str) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }
}

/// The signature header's value, worked out by openssl.
fn openssl_signature(secret: &str, body: &[u8]) -> String {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("body");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .arg(&file)
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256={}", hex.split_whitespace().next().unwrap())
}

fn create_hook(server: &Server, token: &str, body: &str) -> (u16, serde_json::Value) {
    api_request(
        server,
        "POST",
        "/api/v1/repos/acme/app/hooks",
        Some(token),
        body,
    )
}

/// The `refs` a push delivery should carry, in `git`'s words (asked in `src`):
/// each ref with its value before and after (40 zeros for none), whether it was
/// created, deleted or (moved to a commit that does not have the old one in
/// its history) forced, and the commit it now names: its id, tree, parents,
/// raw message, author and committer.
fn moved(src: &Path, refs: &[(&str, String, String)]) -> serde_json::Value {
    let zero = "0".repeat(40);
    refs.iter()
        .map(|(name, before, after)| {
            let mut entry = serde_json::json!({
                "ref": name,
                "before": before,
                "after": after,
                "created": *before == zero,
                "deleted": *after == zero,
            });
            if *before != zero && *after != zero {
                let ancestor = git_output(src, &["merge-base", "--is-ancestor", before, after]);
                entry["forced"] = (!ancestor.status.success()).into();
            }
            if *after != zero {
                let commit = git(src, &["rev-parse", &format!("{after}^{{commit}}")])
                    .trim()
                    .to_string();
                entry["head_commit"] = commit_as_git_shows_it(src, &commit);
            }
            entry
        })
        .collect()
}

fn webhook_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let receiver = Receiver::start();

    // Only the repository's admins manage its webhooks; bad URLs are refused.
    let writer = scoped_token(&server, ADMIN, "acme/app", "write");
    let hook_body = format!(r#"{{"url":"{}","secret":"{SECRET}"}}"#, receiver.url("/ci"));
    let (status, body) = create_hook(&server, &writer, &hook_body);
    assert_eq!(status, 403, "{body}");
    for bad in [
        r#"{"url":"ftp://ci.example/"}"#.to_string(),
        r#"{"url":"no url"}"#.to_string(),
        format!(r#"{{"url":"{}","events":["tag"]}}"#, receiver.url("/ci")),
    ] {
        let (status, body) = create_hook(&server, ADMIN, &bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Created: a signed ping arrives.
    let (status, hook) = create_hook(&server, ADMIN, &hook_body);
    assert_eq!(status, 201, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["events"], serde_json::json!(["push"]));
    assert_eq!(hook["signed"], true);
    assert!(hook.get("secret").is_none(), "the secret is never shown");
    let ping = receiver.nth("/ci", 1);
    assert_eq!(ping.header("X-GitClaw-Event"), Some("ping"));
    assert_eq!(ping.header("X-GitClaw-Hook-Id"), Some(hook_id.as_str()));
    assert_eq!(
        ping.header("X-GitClaw-Signature-256"),
        Some(openssl_signature(SECRET, &ping.body).as_str())
    );
    assert_eq!(ping.json()["repository"]["name"], "app");

    // A push: the receiver fails the first attempt, and gets the same
    // delivery again.
    receiver.answers.lock().unwrap().push(500);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    git(&src, &["push", "-q", &url, "main", "v1.0"]);
    let first = receiver.nth("/ci", 2);
    let second = receiver.nth("/ci", 3);
    assert_eq!(first.header("X-GitClaw-Event"), Some("push"));
    assert_eq!(
        first.header("X-GitClaw-Delivery"),
        second.header("X-GitClaw-Delivery"),
        "a retry is the same delivery"
    );
    assert_ne!(
        first.header("X-GitClaw-Delivery"),
        ping.header("X-GitClaw-Delivery")
    );
    assert_eq!(first.body, second.body);
    assert_eq!(
        second.header("X-GitClaw-Signature-256"),
        Some(openssl_signature(SECRET, &second.body).as_str())
    );
    let zero = "0".repeat(40);
    let main = git(&src, &["rev-parse", "main"]).trim().to_string();
    let tag = git(&src, &["rev-parse", "v1.0"]).trim().to_string();
    let event = second.json();
    assert_eq!(
        event["refs"],
        moved(
            &src,
            &[
                ("refs/heads/main", zero.clone(), main.clone()),
                ("refs/tags/v1.0", zero.clone(), tag),
            ]
        )
    );
    assert_eq!(event["ref_count"], 2);
    assert_eq!(event["push_options"], serde_json::json!([]));
    assert_eq!(event["push_option_count"], 0);
    assert_eq!(event["repository"]["owner"], "acme");
    assert_eq!(event["pusher"], "admin");

    // A push refused as a whole (not a fast-forward) sends nothing: the next
    // delivery is the push after it.
    let other = work.path().join("other");
    git(work.path(), &["clone", "-q", &url, other.to_str().unwrap()]);
    git(
        &other,
        &["commit", "-q", "--allow-empty", "-m", "elsewhere"],
    );
    git(&src, &["commit", "-q", "--allow-empty", "-m", "here"]);
    // With push options (`git push -o`), which CI reads from the payload.
    git(
        &src,
        &[
            "push",
            "-q",
            "-o",
            "ci.skip",
            "-o",
            "merge_request.title=A b",
            &url,
            "main",
        ],
    );
    let here = git(&src, &["rev-parse", "main"]).trim().to_string();
    let refused = git_output(&other, &["push", "-q", &url, "main"]);
    assert!(!refused.status.success(), "not a fast-forward");
    let next = receiver.nth("/ci", 4);
    assert_eq!(
        next.json()["refs"],
        moved(&src, &[("refs/heads/main", main.clone(), here.clone())])
    );
    assert_eq!(
        next.json()["push_options"],
        serde_json::json!(["ci.skip", "merge_request.title=A b"])
    );
    assert_eq!(next.json()["push_option_count"], 2);
    git(&src, &["push", "-q", &url, "--delete", "v1.0"]);
    let deleted = receiver.nth("/ci", 5);
    assert_eq!(
        deleted.json()["refs"],
        moved(
            &src,
            &[(
                "refs/tags/v1.0",
                git(&src, &["rev-parse", "v1.0"]).trim().to_string(),
                zero
            )]
        )
    );

    // The deliveries as the API shows them, newest first.
    let path = format!("/api/v1/repos/acme/app/hooks/{hook_id}/deliveries");
    let mut shown = serde_json::Value::Null;
    wait::wait_until(Duration::from_secs(30), "every delivery recorded", || {
        let (status, body) = api_request(&server, "GET", &path, Some(ADMIN), "");
        assert_eq!(status, 200, "{body}");
        shown = body;
        shown["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
    });
    let summary: Vec<(String, u64)> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["event"].as_str().unwrap().to_string(),
                d["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [("push", 1), ("push", 1), ("push", 2), ("ping", 1)]
        .into_iter()
        .map(|(e, n)| (e.to_string(), n))
        .collect();
    assert_eq!(summary, expected);
    assert_eq!(shown["deliveries"][2]["last_status"], 204);
    let (status, _) = api_request(&server, "GET", &path, Some(&writer), "");
    assert_eq!(status, 403);

    // A delivery sent again by hand: a new delivery of the same body.
    let ping_id = shown["deliveries"][3]["id"].as_i64().unwrap();
    let redeliver = format!("{path}/{ping_id}/redeliver");
    let (status, _) = api_request(&server, "POST", &redeliver, Some(&writer), "");
    assert_eq!(status, 403);
    let (status, _) = api_request(
        &server,
        "POST",
        &format!("{path}/999999/redeliver"),
        Some(ADMIN),
        "",
    );
    assert_eq!(status, 404);
    let (status, again) = api_request(&server, "POST", &redeliver, Some(ADMIN), "");
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["event"], "ping");
    let resent = receiver.nth("/ci", 6);
    assert_eq!(resent.body, ping.body);
    assert_eq!(
        resent.header("X-GitClaw-Delivery"),
        Some(again["id"].to_string().as_str())
    );

    // A second webhook, unsigned; the first deleted: pushes go to the second only.
    let (status, second_hook) = create_hook(
        &server,
        ADMIN,
        &format!(r#"{{"url":"{}"}}"#, receiver.url("/other")),
    );
    assert_eq!(status, 201, "{second_hook}");
    assert_eq!(second_hook["signed"], false);
    assert_eq!(
        receiver.nth("/other", 1).header("X-GitClaw-Event"),
        Some("ping")
    );
    let (status, _) = api_request(
        &server,
        "DELETE",
        &format!("/api/v1/repos/acme/app/hooks/{hook_id}"),
        Some(ADMIN),
        "",
    );
    assert_eq!(status, 204);
    let (status, _) = api_request(&server, "GET", &path, Some(ADMIN), "");
    assert_eq!(status, 404);
    let (_, listed) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/hooks",
        Some(ADMIN),
        "",
    );
    let ids = strings(&listed["hooks"], "id");
    assert_eq!(ids, vec![second_hook["id"].as_str().unwrap()]);
    let before = receiver.count("/ci");
    git(&src, &["commit", "-q", "--allow-empty", "-m", "later"]);
    git(&src, &["push", "-q", &url, "main"]);
    let pushed = receiver.nth("/other", 2);
    assert_eq!(pushed.header("X-GitClaw-Signature-256"), None);
    assert_eq!(
        pushed.json()["refs"],
        moved(
            &src,
            &[(
                "refs/heads/main",
                here,
                git(&src, &["rev-parse", "main"]).trim().to_string()
            )]
        )
    );
    assert_eq!(
        receiver.count("/ci"),
        before,
        "nothing to the deleted webhook"
    );

    // A force-push says so.
    let tip = git(&src, &["rev-parse", "main"]).trim().to_string();
    let back = git(&src, &["rev-parse", "main~2"]).trim().to_string();
    git(
        &src,
        &["push", "-q", "-f", &url, &format!("{back}:refs/heads/main")],
    );
    let forced = receiver.nth("/other", 3);
    assert_eq!(
        forced.json()["refs"],
        moved(&src, &[("refs/heads/main", tip, back)])
    );
    assert_eq!(forced.json()["refs"][0]["forced"], true);
}

/// With `GITCLAW_WEBHOOK_PRIVATE_TARGETS=false`, a webhook to an address that
/// is not public is refused when made.
#[test]
fn private_targets_can_be_refused() {
    let server = Server::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        c.webhook_private_targets = false;
    });
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some(ADMIN),
        r#"{"owner":"acme","name":"app"}"#,
    );
    assert_eq!(status, 201);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::1]/",
        "http://169.254.169.254/",
    ] {
        let (status, body) = create_hook(&server, ADMIN, &format!(r#"{{"url":"{url}"}}"#));
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("GITCLAW_WEBHOOK_PRIVATE_TARGETS=false"),
            "{body}"
        );
    }
    let (status, body) = create_hook(&server, ADMIN, r#"{"url":"https://ci.example/hook"}"#);
    assert_eq!(status, 201, "{body}");
}

#[test]
fn webhooks_are_told_of_pushes() {
    webhook_story(Backend::Embedded);
}

#[test]
fn webhooks_are_told_of_pushes_on_postgres() {
    webhook_story(Backend::Postgres);
}
