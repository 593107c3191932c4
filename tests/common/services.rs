//! The PostgreSQL and S3 servers the tests run against, named by environment
//! variables that `scripts/test.sh` sets for a run.
//!
//! A test that needs one and does not find it fails, saying how to start it: a
//! test that returned early instead would pass without having run.
//!
//! Shared by the workspace's tests: `tests/common` declares it, the crates'
//! test helpers include it with `#[path]`. So: std only.

/// The URL of the PostgreSQL server for the tests (`GITCLAW_TEST_POSTGRES_URL`),
/// with a database the tests may create others from.
pub fn postgres_url() -> String {
    required(
        "GITCLAW_TEST_POSTGRES_URL",
        "PostgreSQL",
        "eval \"$(scripts/postgres.sh)\"",
        "scripts/postgres.sh stop $GITCLAW_TEST_PG_DIR",
    )
}

/// The CA whose certificate the test PostgreSQL server presents for TLS
/// (`GITCLAW_TEST_PG_TLS_CA`); the role `gitclaw_tls` may connect only over TLS.
pub fn postgres_tls_ca() -> String {
    required(
        "GITCLAW_TEST_PG_TLS_CA",
        "PostgreSQL",
        "eval \"$(scripts/postgres.sh)\"",
        "scripts/postgres.sh stop $GITCLAW_TEST_PG_DIR",
    )
}

/// The client certificate and key the test PostgreSQL server's role
/// `gitclaw_cert` logs in with (and cannot without):
/// `GITCLAW_TEST_PG_TLS_CLIENT_CERT` and `_KEY`.
pub fn postgres_tls_client() -> (String, String) {
    let var = |name| {
        required(
            name,
            "PostgreSQL",
            "eval \"$(scripts/postgres.sh)\"",
            "scripts/postgres.sh stop $GITCLAW_TEST_PG_DIR",
        )
    };
    (
        var("GITCLAW_TEST_PG_TLS_CLIENT_CERT"),
        var("GITCLAW_TEST_PG_TLS_CLIENT_KEY"),
    )
}

/// How to reach the test S3 server.
#[derive(Debug, Clone)]
pub struct S3Env {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// A bucket that exists; tests that want their own set `auto_create_bucket`.
    pub bucket: String,
}

/// The S3 server for the tests (`GITCLAW_TEST_S3_ENDPOINT` and the other
/// `GITCLAW_TEST_S3_*` variables).
pub fn s3_env() -> S3Env {
    let get = |name: &str| {
        required(
            name,
            "an S3 server",
            "scripts/garage.sh install && eval \"$(scripts/garage.sh)\"",
            "scripts/garage.sh stop $GITCLAW_TEST_GARAGE_DIR",
        )
    };
    S3Env {
        endpoint: get("GITCLAW_TEST_S3_ENDPOINT"),
        region: get("GITCLAW_TEST_S3_REGION"),
        access_key_id: get("GITCLAW_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: get("GITCLAW_TEST_S3_SECRET_ACCESS_KEY"),
        bucket: get("GITCLAW_TEST_S3_BUCKET"),
    }
}

/// The value of `name`; panics, saying how to start `service`, when it is unset or empty.
fn required(name: &str, service: &str, start: &str, stop: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: this test needs {service}. Run the tests with \
             scripts/test.sh, which starts PostgreSQL and Garage for the run; or start \
             {service} in this shell with `{start}` (stop it afterwards with `{stop}`) \
             and run cargo test again"
        ),
    }
}
