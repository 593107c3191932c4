//! TLS to the services behind GitClaw, as managed offerings demand it:
//! PostgreSQL (`sslmode` and `sslrootcert` in `DATABASE_URL`, and `sslcert`
//! and `sslkey` where it asks for a client certificate), Redis (`rediss://`,
//! `GITCLAW_REDIS_CA_CERT`, and `GITCLAW_REDIS_CLIENT_CERT` and `_KEY`) and S3
//! (an `https://` endpoint and `S3_CA_CERT`), each presenting a certificate
//! from a throw-away CA. Pushes
//! and clones work over the verified connection; without the CA, or without
//! TLS where the service demands it, `gitclaw check` refuses and says why.

mod common;

use std::{net::ToSocketAddrs, process::Output};

use common::{
    redis::RedisServer,
    tls::{tls_front, Certs},
    *,
};

/// Push a fixture repository to `server` and clone it back; the clone holds
/// what was pushed.
fn push_and_clone(server: &ServerProcess, name: &str) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = server.create_repo("tls", name);
    push_everything(&src, &url);
    let dest = work.path().join("clone");
    clone_checked(work.path(), &url, &dest);
    assert_eq!(
        git(&dest, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "HEAD"])
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `gitclaw check` passed and printed `line`.
fn assert_checked(out: &Output, line: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == line),
        "gitclaw check: {stdout}{}",
        stderr(out)
    );
}

/// `gitclaw check` failed with one problem, on `variable`, that says each of `why`.
fn assert_refused(out: &Output, variable: &str, why: &[&str]) {
    let err = stderr(out);
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("gitclaw: ") && !l.ends_with(" problem(s) found"))
        .collect();
    assert!(!out.status.success(), "gitclaw check passed: {err}");
    assert_eq!(problems.len(), 1, "{err}");
    let problem = problems[0].to_lowercase();
    assert!(
        problem.starts_with(&format!("gitclaw: {}:", variable.to_lowercase()))
            && why.iter().all(|w| problem.contains(&w.to_lowercase())),
        "expected {variable}: {why:?}, got: {err}"
    );
}

#[test]
fn postgres_that_demands_tls_is_reached_over_a_verified_connection() {
    // The role `gitclaw_tls` is refused by the test server without TLS.
    let database = postgres_database_owned_by("gitclaw_tls");
    let (_, at) = database.split_once('@').expect("user@host in the URL");
    let name = at.rsplit('/').next().unwrap().to_string();
    let url = format!(
        "postgres://gitclaw_tls@{at}?sslmode=verify-full&sslrootcert={}",
        postgres_tls_ca()
    );
    let server = ServerProcess::start(&[("DATABASE_URL", url.clone())]);
    push_and_clone(&server, "over-tls");
    // Every connection the server holds to its database is encrypted.
    let sessions = psql(
        &postgres_url(),
        &format!(
            "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.datname = '{name}'"
        ),
    );
    let (count, all_tls) = sessions.split_once('|').unwrap();
    assert!(
        count.parse::<u32>().unwrap() > 0 && all_tls == "t",
        "the server's sessions (count|all over TLS): {sessions}"
    );
    assert_checked(&server.command(&["check"]), "database: ok (postgres)");

    // Without TLS this role is refused; the refusal is PostgreSQL's.
    let plain = url.replace("sslmode=verify-full", "sslmode=disable");
    let out = server.command_with_env(&["check"], &[("DATABASE_URL", plain)]);
    assert_refused(&out, "DATABASE_URL", &["no encryption"]);
    // Verified against the system's CAs, which do not know this one.
    let unverified = format!("postgres://gitclaw_tls@{at}?sslmode=verify-full");
    let out = server.command_with_env(&["check"], &[("DATABASE_URL", unverified)]);
    assert_refused(&out, "DATABASE_URL", &["certificate"]);
}

#[test]
fn redis_over_tls_is_used_with_the_ca_named_and_check_says_why_not_without_it() {
    let certs = Certs::new();
    let ca = certs.ca().to_string_lossy().into_owned();
    let redis = RedisServer::start_tls(certs);
    let server = ServerProcess::start(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_REDIS_CA_CERT", ca),
        // Redis alone answers repeated reads.
        ("GITCLAW_METADATA_CACHE_BYTES", "0".into()),
    ]);
    push_and_clone(&server, "cached");
    let work = tempfile::tempdir().unwrap();
    let url = format!("{}/tls/cached.git", server.url);
    clone_checked(work.path(), &url, &work.path().join("again"));
    let hits = metric(
        server.addr,
        "gitclaw_cache_lookups_total{cache=\"metadata\",result=\"hit\"}",
    );
    assert!(hits > 0.0, "the second clone read Redis: {hits} hits");
    assert!(
        !redis.keys("gitclaw:v1:refs:*").is_empty(),
        "refs are cached in Redis"
    );
    assert_eq!(metric(server.addr, "gitclaw_redis_up"), 1.0);
    assert_checked(&server.command(&["check"]), "shared cache: ok (Redis)");

    // The same server checked without the CA: the system's do not know it.
    let check = |redis_url: String| gitclaw_check(&[("REDIS_URL", redis_url)]);
    assert_refused(&check(redis.url()), "REDIS_URL", &["certificate"]);
    // Plain `redis://` to a Redis that speaks only TLS.
    let plain = redis.url().replace("rediss://", "redis://");
    let out = check(plain);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gitclaw: REDIS_URL:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn postgres_that_demands_a_client_certificate_is_reached_with_sslcert_and_sslkey() {
    // The role `gitclaw_cert` logs in with the CA's client certificate only.
    let database = postgres_database_owned_by("gitclaw_cert");
    let (_, at) = database.split_once('@').expect("user@host in the URL");
    let (cert, key) = postgres_tls_client();
    let without = format!(
        "postgres://gitclaw_cert@{at}?sslmode=verify-full&sslrootcert={}",
        postgres_tls_ca()
    );
    let url = format!("{without}&sslcert={cert}&sslkey={key}");
    let server = ServerProcess::start(&[("DATABASE_URL", url)]);
    push_and_clone(&server, "with-cert");
    assert_checked(&server.command(&["check"]), "database: ok (postgres)");
    // Without it, PostgreSQL refuses the role.
    let out = server.command_with_env(&["check"], &[("DATABASE_URL", without)]);
    assert_refused(&out, "DATABASE_URL", &["certificate"]);
}

#[test]
fn redis_that_demands_a_client_certificate_is_used_with_the_one_named() {
    let certs = Certs::new();
    let (ca, cert, key) = (
        certs.ca().to_string_lossy().into_owned(),
        certs.client_cert().to_string_lossy().into_owned(),
        certs.client_key().to_string_lossy().into_owned(),
    );
    let redis = RedisServer::start_mtls(certs);
    let server = ServerProcess::start(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_REDIS_CA_CERT", ca.clone()),
        ("GITCLAW_REDIS_CLIENT_CERT", cert.clone()),
        ("GITCLAW_REDIS_CLIENT_KEY", key.clone()),
        ("GITCLAW_METADATA_CACHE_BYTES", "0".into()),
    ]);
    push_and_clone(&server, "mutual");
    let work = tempfile::tempdir().unwrap();
    let url = format!("{}/tls/mutual.git", server.url);
    clone_checked(work.path(), &url, &work.path().join("again"));
    assert!(
        !redis.keys("gitclaw:v1:refs:*").is_empty(),
        "refs are cached in Redis"
    );
    assert_eq!(metric(server.addr, "gitclaw_redis_up"), 1.0);
    assert_checked(&server.command(&["check"]), "shared cache: ok (Redis)");

    // Without a client certificate Redis ends the handshake.
    let out = gitclaw_check(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_REDIS_CA_CERT", ca.clone()),
    ]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gitclaw: REDIS_URL:"),
        "{}",
        stderr(&out)
    );
    // A certificate without its key, a key file as certificate, and a client
    // certificate for a plain connection are configuration errors.
    let out = gitclaw_check(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_REDIS_CLIENT_CERT", cert.clone()),
    ]);
    assert_misconfigured(
        &out,
        "GITCLAW_REDIS_CLIENT_KEY: is needed with GITCLAW_REDIS_CLIENT_CERT",
    );
    let out = gitclaw_check(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_REDIS_CLIENT_CERT", key.clone()),
        ("GITCLAW_REDIS_CLIENT_KEY", key.clone()),
    ]);
    assert_misconfigured(&out, "GITCLAW_REDIS_CLIENT_CERT: ");
    assert!(stderr(&out).contains("holds no PEM certificate"));
    let plain = redis.url().replace("rediss://", "redis://");
    let out = gitclaw_check(&[
        ("REDIS_URL", plain),
        ("GITCLAW_REDIS_CLIENT_CERT", cert),
        ("GITCLAW_REDIS_CLIENT_KEY", key),
    ]);
    assert_misconfigured(
        &out,
        "GITCLAW_REDIS_CLIENT_CERT: is only for a TLS connection",
    );
}

/// `gitclaw check` refused its configuration, saying `what`.
fn assert_misconfigured(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success() && err.contains("configuration error") && err.contains(what),
        "expected a configuration error saying {what:?}, got: {err}"
    );
}

#[test]
fn s3_over_https_is_used_with_the_ca_named_and_check_says_why_not_without_it() {
    let certs = Certs::new();
    let garage = s3_env()
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_socket_addrs()
        .expect("the test S3 endpoint is host:port")
        .next()
        .unwrap();
    let front = tls_front(&certs, garage);
    let bucket = fresh_bucket();
    let mut env: Vec<(&str, String)> = s3_process_env(&bucket)
        .into_iter()
        .filter(|(k, _)| *k != "S3_ENDPOINT")
        .collect();
    env.push(("S3_ENDPOINT", format!("https://{front}")));
    let with_ca = [
        env.clone(),
        vec![("S3_CA_CERT", certs.ca().to_string_lossy().into_owned())],
    ]
    .concat();
    let server = ServerProcess::start(&with_ca);
    push_and_clone(&server, "stored");
    let (status, body) = http(server.addr, "GET", "/api/v1/repos/tls/stored", &[], b"");
    assert_eq!(status, 200);
    let repo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = repo["id"].as_str().expect("the repository's id");
    assert!(
        !bucket_keys(&bucket, id).is_empty(),
        "the pushed objects are in the bucket"
    );
    assert_checked(&server.command(&["check"]), "object store: ok (s3)");

    // Without the CA the store cannot be reached, and check says why.
    env.push(("S3_MAX_RETRIES", "0".into()));
    let out = gitclaw_check(&env);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr(&out)
    );
}
