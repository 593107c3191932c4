//! Test support: a GitClaw server on port 0 and a `git` that ignores the user's config.
#![allow(dead_code)]

pub mod http_backend;
pub mod proxy;
pub mod redis;
pub mod services;
pub mod tls;
pub mod wait;
pub mod wire;

// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use services::{postgres_tls_ca, postgres_tls_client, postgres_url, s3_env, S3Env};
#[allow(unused_imports)]
pub use wait::wait_until;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use gitclaw_server::{AppState, Config};

/// A server on 127.0.0.1:0 with its own data directory, stopped on drop.
pub struct Server {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub data: tempfile::TempDir,
    pub state: AppState,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Where a test server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Filesystem object store + SQLite under the data dir.
    Embedded,
    /// Filesystem object store + a real PostgreSQL server.
    Postgres,
    /// A real S3 server (Garage) + a real PostgreSQL server: the production setup.
    S3Postgres,
}

/// The setups every such test runs on.
pub const BACKENDS: [Backend; 2] = [Backend::Embedded, Backend::S3Postgres];

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    // The process id alone repeats across runs against a long-lived server;
    // with the start time (in seconds) it does not.
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        started % 1_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh database on the test PostgreSQL server.
pub fn postgres_database() -> String {
    postgres_database_owned_by("postgres")
}

/// A fresh database on the test PostgreSQL server, owned by the role `owner`
/// (the URL names the server's superuser).
pub fn postgres_database_owned_by(owner: &str) -> String {
    let base = postgres_url();
    let name = unique("gitclaw");
    let out = Command::new("psql")
        .arg(&base)
        .args(["-q", "-c", &format!("CREATE DATABASE {name} OWNER {owner}")])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "CREATE DATABASE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database");
    format!("{prefix}/{name}")
}

/// Point a configuration at a fresh PostgreSQL database.
pub fn use_postgres(config: &mut Config) {
    config.database_url = postgres_database();
}

/// A fresh, not yet created bucket name.
pub fn fresh_bucket() -> String {
    unique("gc").replace('_', "-")
}

/// S3 settings for the test server, with a fresh bucket created at start.
pub fn s3_settings() -> gitclaw_storage::S3Settings {
    s3_settings_on(&s3_env())
}

/// S3 settings for the S3 server `env` names, with a fresh bucket created at start.
pub fn s3_settings_on(env: &services::S3Env) -> gitclaw_storage::S3Settings {
    let mut s3 = gitclaw_storage::S3Settings::new(fresh_bucket(), env.region.clone());
    s3.endpoint = Some(env.endpoint.clone());
    s3.credentials = Some((env.access_key_id.clone(), env.secret_access_key.clone()));
    s3.path_style = true;
    s3.auto_create_bucket = true;
    s3
}

/// The environment that points a `gitclaw` process at the test S3 server.
pub fn s3_process_env(bucket: &str) -> Vec<(&'static str, String)> {
    let env = s3_env();
    vec![
        ("S3_BUCKET", bucket.to_string()),
        ("S3_REGION", env.region.clone()),
        ("S3_ENDPOINT", env.endpoint.clone()),
        ("S3_ACCESS_KEY_ID", env.access_key_id.clone()),
        ("S3_SECRET_ACCESS_KEY", env.secret_access_key.clone()),
        ("S3_USE_PATH_STYLE", "true".into()),
        ("S3_AUTO_CREATE_BUCKET", "true".into()),
    ]
}

/// `psql -At -c QUERY` on `database_url`, trimmed; panics when it fails.
pub fn psql(database_url: &str, query: &str) -> String {
    let out = Command::new("psql")
        .args([database_url, "-At", "-v", "ON_ERROR_STOP=1", "-c", query])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every key `bucket` holds under a repository's prefix, sorted, listed with
/// the S3 API (not through any server).
pub fn bucket_keys(bucket: &str, repo_id: &str) -> Vec<String> {
    bucket_keys_on(&s3_env(), bucket, repo_id)
}

/// [`bucket_keys`] on the S3 server `env` names.
pub fn bucket_keys_on(env: &services::S3Env, bucket: &str, repo_id: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut settings = s3_settings_on(env);
        settings.bucket = bucket.to_string();
        let store = gitclaw_storage::S3Backend::new(settings)
            .await
            .expect("S3 client");
        let prefix = gitclaw_storage::RepoId::new(repo_id).expect("id").prefix();
        let mut keys: Vec<String> = gitclaw_storage::ObjectStorageBackend::list(&store, &prefix)
            .await
            .expect("list")
            .into_iter()
            .map(|m| m.key)
            .collect();
        keys.sort();
        keys
    })
}

/// The store keys the PostgreSQL database at `database_url` records for a
/// repository (packs with their indexes and commit-graphs, loose objects), sorted.
pub fn recorded_keys(database_url: &str, repo_id: &str) -> Vec<String> {
    let packs = psql(
        database_url,
        &format!(
            "SELECT pack_hash || CASE WHEN graph_bytes IS NULL THEN '' ELSE ' graph' END \
             FROM packs WHERE repo_id = '{repo_id}'"
        ),
    );
    let loose = psql(
        database_url,
        &format!("SELECT oid FROM loose_objects WHERE repo_id = '{repo_id}'"),
    );
    let mut keys: Vec<String> = packs
        .lines()
        .flat_map(|line| {
            let (h, graph) = match line.split_once(' ') {
                Some((h, _)) => (h, true),
                None => (line, false),
            };
            [
                Some(format!("{repo_id}/pack/pack-{h}.idx")),
                Some(format!("{repo_id}/pack/pack-{h}.pack")),
                graph.then(|| format!("{repo_id}/pack/pack-{h}.graph")),
            ]
        })
        .flatten()
        .chain(
            loose
                .lines()
                .map(|o| format!("{repo_id}/objects/{}/{}", &o[..2], &o[2..])),
        )
        .collect();
    keys.sort();
    keys
}

/// The keys a compaction replaced that the database at `database_url` has
/// scheduled for deletion once their grace period is over, sorted.
pub fn pending_deletion_keys(database_url: &str, repo_id: &str) -> Vec<String> {
    let mut keys: Vec<String> = psql(
        database_url,
        &format!("SELECT object_key FROM pending_deletions WHERE repo_id = '{repo_id}'"),
    )
    .lines()
    .map(str::to_string)
    .collect();
    keys.sort();
    keys
}

/// Every key the database at `database_url` lists for a repository: what it
/// records and what it has scheduled for deletion, sorted.
pub fn listed_keys(database_url: &str, repo_id: &str) -> Vec<String> {
    let mut keys = recorded_keys(database_url, repo_id);
    keys.extend(pending_deletion_keys(database_url, repo_id));
    keys.sort();
    keys.dedup();
    keys
}

/// Wait until no claim on a repository's store keys is live in the database
/// at `database_url`: the leases of pushes that died or failed have lapsed.
pub fn wait_for_leases_to_lapse(database_url: &str, repo_id: &str) {
    wait::wait_until(
        std::time::Duration::from_secs(60),
        "the leases on the repository's keys to lapse",
        || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            psql(
                database_url,
                &format!(
                    "SELECT count(*) FROM store_claims WHERE repo_id = '{repo_id}' AND expires_at >= {now}"
                ),
            ) == "0"
        },
    );
}

/// Set up a configuration for one of the backend setups.
pub fn use_backend(config: &mut Config, backend: Backend) {
    match backend {
        Backend::Embedded => {}
        Backend::Postgres => use_postgres(config),
        Backend::S3Postgres => {
            use_postgres(config);
            config.s3 = Some(s3_settings());
        }
    }
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(|_| {})
    }

    pub fn start_on(backend: Backend) -> Server {
        Server::start_with(|config| use_backend(config, backend))
    }

    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(data.path());
        adjust(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (state, addr) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            config.listen = addr;
            let state = AppState::open(config).await.expect("server state opens");
            let serving = state.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                gitclaw_server::serve(listener, serving, shutdown)
                    .await
                    .expect("serve");
            });
            (state, addr)
        });
        Server {
            url: format!("http://{addr}"),
            addr,
            data,
            state,
            runtime: Some(runtime),
            stop: Some(stop),
        }
    }

    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.runtime.as_ref().expect("running").block_on(fut)
    }

    /// Create a repository through the REST API; returns the clone URL.
    pub fn create_repo(&self, owner: &str, name: &str) -> String {
        create_repo_at(self.addr, owner, name)
    }

    /// The repository's stable id.
    pub fn repo_id(&self, owner: &str, name: &str) -> String {
        self.block_on(self.state.meta.get_repo(owner, name))
            .expect("metadata")
            .expect("repo exists")
            .id
    }

    /// Every key the store holds for a repository.
    pub fn stored_keys(&self, owner: &str, name: &str) -> Vec<String> {
        let id = gitclaw_storage::RepoId::new(self.repo_id(owner, name)).expect("repo id");
        self.block_on(self.state.store.list(&id.prefix()))
            .expect("list")
            .into_iter()
            .map(|m| m.key)
            .collect()
    }

    /// The repository's refs as the database holds them, as sorted `oid name` lines.
    pub fn stored_refs(&self, owner: &str, name: &str) -> Vec<String> {
        let id = self.repo_id(owner, name);
        let mut lines: Vec<String> = self
            .block_on(self.state.meta.list_refs(&id))
            .expect("metadata")
            .into_iter()
            .map(|r| format!("{} {}", r.oid, r.name))
            .collect();
        lines.sort();
        lines
    }

    /// Where the filesystem store keeps a repository's keys.
    pub fn repo_dir(&self, owner: &str, name: &str) -> PathBuf {
        let repo = self
            .block_on(self.state.meta.get_repo(owner, name))
            .expect("metadata")
            .expect("repo exists");
        self.data.path().join("objects").join(repo.id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// A minimal HTTP/1.1 client: one request, `Connection: close`, returns status and body.
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = http_full(addr, method, path, headers, body);
    (status, body)
}

/// Like [`http`], also returning the response head (status line and headers).
pub fn http_full(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `gitclaw check` in a fresh data directory with `env` as its only settings.
pub fn gitclaw_check<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    env: &[(K, V)],
) -> Output {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitclaw"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("GITCLAW_CONFIG")
        .env("GITCLAW_DATA_DIR", data.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("check").output().expect("gitclaw runs")
}

/// `git` with a clean environment: no user or system config, no prompts.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "C O Mitter")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null());
    cmd
}

pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    git_cmd(dir).args(args).output().expect("git runs")
}

/// Run git and return stdout; panics with stderr on failure.
/// `git args` in `dir` reading `input` on its standard input; its trimmed output.
pub fn git_with_input(dir: &Path, args: &[&str], input: &[u8]) -> String {
    let mut child = git_cmd(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input written");
    let out = child.wait_with_output().expect("git ends");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Clone `url` into `dir` (from `work`); the clone must be `git fsck --strict` clean.
pub fn clone_checked(work: &Path, url: &str, dir: &Path) {
    git(work, &["clone", "-q", url, dir.to_str().unwrap()]);
    git(dir, &["fsck", "--strict", "--no-progress"]);
}

/// Build the standard fixture repository with real git.
pub fn fixture_repo(dir: &Path, extra_commits: u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/make-history.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(extra_commits.to_string())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("fixture script runs");
    assert!(
        out.status.success(),
        "fixture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `objectname objecttype` of every object the repository `dir` holds, sorted.
pub fn all_objects(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = git(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect();
    all.sort();
    all.dedup();
    all
}

/// `objectname refname` lines of every ref under `prefix`, sorted.
pub fn refs_of(dir: &Path, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = git(
        dir,
        &["for-each-ref", "--format=%(objectname) %(refname)", prefix],
    )
    .lines()
    .map(str::to_string)
    .collect();
    lines.sort();
    lines
}

/// Refs the server advertises (`git ls-remote`), as `oid name` lines without HEAD.
pub fn remote_refs(dir: &Path, url: &str) -> Vec<String> {
    let mut lines: Vec<String> = git(dir, &["ls-remote", url])
        .lines()
        .filter(|l| !l.ends_with("\tHEAD"))
        .map(|l| l.replace('\t', " "))
        .collect();
    lines.sort();
    lines
}

/// Create a repository through the REST API of the server at `addr`; returns the clone URL.
pub fn create_repo_at(addr: std::net::SocketAddr, owner: &str, name: &str) -> String {
    let body = format!(r#"{{"owner":"{owner}","name":"{name}"}}"#);
    let (status, text) = http(
        addr,
        "POST",
        "/api/v1/repos",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(
        status,
        201,
        "create repo: {}",
        String::from_utf8_lossy(&text)
    );
    format!("http://{addr}/{owner}/{name}.git")
}

/// Push every branch and tag of `src` to `url`.
pub fn push_everything(src: &Path, url: &str) {
    git(
        src,
        &[
            "push",
            "-q",
            url,
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ],
    );
}

pub fn commit_file(dir: &Path, file: &str, content: &str, message: &str) -> String {
    std::fs::write(dir.join(file), content).expect("write file");
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// A server with the standard fixture repository (plus `extra_commits`) pushed,
/// branches and tags, to `owner/name`; `work` holds `src` and room for clones.
pub struct Pushed {
    pub server: Server,
    pub work: tempfile::TempDir,
    pub src: PathBuf,
    pub url: String,
}

impl Pushed {
    pub fn fixture(owner: &str, name: &str, extra_commits: u32) -> Pushed {
        Pushed::fixture_with(|_| {}, owner, name, extra_commits)
    }

    pub fn fixture_with(
        adjust: impl FnOnce(&mut Config),
        owner: &str,
        name: &str,
        extra_commits: u32,
    ) -> Pushed {
        let server = Server::start_with(adjust);
        let work = tempfile::tempdir().expect("temp dir");
        let src = work.path().join("src");
        fixture_repo(&src, extra_commits);
        let url = server.create_repo(owner, name);
        push_everything(&src, &url);
        Pushed {
            server,
            work,
            src,
            url,
        }
    }
}

/// The longest delta chain in a pack, from `git verify-pack -v`.
pub fn longest_chain(dir: &Path, idx: &Path) -> usize {
    git(dir, &["verify-pack", "-v", idx.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.strip_prefix("chain length = "))
        .filter_map(|rest| rest.split(':').next()?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub anon: u64,
    pub file: u64,
}

/// A `gitclaw serve` process (the real binary) on a port it picked itself, killed on drop.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub url: String,
    pub data: tempfile::TempDir,
    /// What the process writes to stderr.
    pub log: ServerLog,
    env: Vec<(String, String)>,
}

/// The log filter of `gitclaw serve` processes in tests: warnings, and the
/// line that names the address the server bound.
pub const SERVER_LOG_FILTER: &str = "warn,gitclaw_server::cli=info";

impl ServerProcess {
    /// Start the binary with an empty data dir and `env` on top of a clean environment.
    pub fn start(env: &[(&str, String)]) -> ServerProcess {
        let data = tempfile::tempdir().expect("temp dir");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let (child, addr, log) = Self::spawn(&data, "127.0.0.1:0", &env);
        ServerProcess {
            child,
            addr,
            url: format!("http://{addr}"),
            data,
            log,
            env,
        }
    }

    /// Kill the process with SIGKILL (no chance to clean up) and start it again on
    /// the same data directory, address and environment.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr, log) = Self::spawn(&self.data, &self.addr.to_string(), &self.env);
        self.child = child;
        self.log = log;
        assert_eq!(addr, self.addr, "the restarted server listens where it did");
    }

    /// Start the process again (killing it first if it still runs) on the same
    /// data directory and address, with `env` in place of its environment: how
    /// a server that died at a crash point comes back without it.
    pub fn restart_with_env(&mut self, env: &[(&str, String)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.kill_and_restart();
    }

    /// Run a `gitclaw` command with the server's data directory and environment.
    pub fn command(&self, args: &[&str]) -> Output {
        self.command_with_env(args, &[])
    }

    /// [`ServerProcess::command`] with `extra` on top of the server's environment.
    pub fn command_with_env(&self, args: &[&str], extra: &[(&str, String)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitclaw"));
        cmd.env_remove("DATABASE_URL")
            .env_remove("GITCLAW_CONFIG")
            .env("RUST_LOG", "warn")
            .env("GITCLAW_DATA_DIR", self.data.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("gitclaw runs")
    }

    /// Start `gitclaw serve` on `listen`; returns once it said which address it bound.
    fn spawn(
        data: &tempfile::TempDir,
        listen: &str,
        env: &[(String, String)],
    ) -> (std::process::Child, std::net::SocketAddr, ServerLog) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitclaw"));
        cmd.env_remove("DATABASE_URL")
            .env_remove("GITCLAW_CONFIG")
            .env("RUST_LOG", SERVER_LOG_FILTER)
            .env("GITCLAW_DATA_DIR", data.path())
            .env("GITCLAW_LISTEN", listen)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.arg("serve").spawn().expect("gitclaw starts");
        let mut log = ServerLog::follow(&mut child);
        match log.listen_addr(std::time::Duration::from_secs(60)) {
            Ok(addr) => (child, addr, log),
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gitclaw serve on {listen}: {err}");
            }
        }
    }

    /// Create a repository through the API; returns its clone URL.
    pub fn create_repo(&self, owner: &str, name: &str) -> String {
        create_repo_at(self.addr, owner, name)
    }

    /// Resident memory now: heap and other anonymous pages, and mapped file pages.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Memory {
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }

    /// Peak resident memory of the process so far, in bytes (Linux `VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            * 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a `gitclaw` process writes to stderr, line by line: echoed into the
/// test's output (shown when the test fails) and kept for the test to read.
pub struct ServerLog {
    /// In a mutex only so a server process can be shared by test threads.
    lines: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    seen: Vec<String>,
}

impl ServerLog {
    /// Follow the stderr of `child`, which must have been spawned with it piped.
    pub fn follow(child: &mut std::process::Child) -> ServerLog {
        use std::io::BufRead;
        let stderr = child.stderr.take().expect("gitclaw's stderr is piped");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end even once nobody listens, so the process never
            // blocks on a full pipe.
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("gitclaw: {line}");
                let _ = send.send(line);
            }
        });
        ServerLog {
            lines: std::sync::Mutex::new(lines),
            seen: Vec::new(),
        }
    }

    /// The address the server bound, from its `gitclaw is serving listen=ADDR`
    /// line; an error with what it wrote if it ended, or said nothing of the
    /// kind within `deadline`.
    pub fn listen_addr(
        &mut self,
        deadline: std::time::Duration,
    ) -> Result<std::net::SocketAddr, String> {
        let until = std::time::Instant::now() + deadline;
        loop {
            if let Some(addr) = self.seen.iter().find_map(|line| serving_addr(line)) {
                return Ok(addr);
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.get_mut().unwrap().recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no \"gitclaw is serving\" line within {deadline:?}; it wrote:\n{}",
                        self.seen.join("\n")
                    ))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "it ended before it listened; it wrote:\n{}",
                        self.seen.join("\n")
                    ))
                }
            }
        }
    }

    /// The first line (seen before or arriving within `deadline`) that
    /// `wanted` accepts; panics with everything written if none does.
    pub fn wait_for(
        &mut self,
        deadline: std::time::Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let until = std::time::Instant::now() + deadline;
        loop {
            if let Some(line) = self.seen.iter().find(|l| wanted(l)) {
                return line.clone();
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.get_mut().unwrap().recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no such line within {deadline:?}; it wrote:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every line written so far.
    pub fn so_far(&mut self) -> &[String] {
        while let Ok(line) = self.lines.get_mut().unwrap().try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Every line, once the process has closed its stderr (it ended); panics if
    /// that does not happen within `deadline`.
    pub fn until_closed(&mut self, deadline: std::time::Duration) -> &[String] {
        let until = std::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.get_mut().unwrap().recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return &self.seen,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!(
                    "gitclaw's stderr still open after {deadline:?}; it wrote:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

/// `ADDR` of a `gitclaw is serving listen=ADDR …` log line.
fn serving_addr(line: &str) -> Option<std::net::SocketAddr> {
    if !line.contains("gitclaw is serving") {
        return None;
    }
    let (_, rest) = line.split_once("listen=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A REST API call to `server` (JSON body, `Bearer token` when given): the
/// status and the JSON answer (`null` when the body is not JSON).
pub fn api_request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (status, bytes) = http(server.addr, method, path, &headers, body.as_bytes());
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A server with authentication on (`admin` is its admin token) on `backend`,
/// and a repository `acme/app` made through the API; with the repository's
/// git URL carrying `admin` as its credentials.
pub fn server_with_repo(admin: &str, backend: Backend) -> (Server, String) {
    let server = Server::start_with(|c| {
        c.admin_token = Some(admin.into());
        use_backend(c, backend);
    });
    let (status, body) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some(admin),
        r#"{"owner":"acme","name":"app"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let url = format!("{}/acme/app.git", server.url).replacen(
        "http://",
        &format!("http://ci:{admin}@"),
        1,
    );
    (server, url)
}

/// A new token with `access` (`read`, `write`, `admin`) on `repo`, made with
/// the admin token `admin`.
pub fn scoped_token(server: &Server, admin: &str, repo: &str, access: &str) -> String {
    let (status, body) = api_request(
        server,
        "POST",
        "/api/v1/tokens",
        Some(admin),
        &format!(
            r#"{{"name":"{access}-{repo}","repos":[{{"repo":"{repo}","access":"{access}"}}]}}"#
        ),
    );
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// The string `field` of each element of the JSON array `array`.
pub fn strings<'a>(array: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {item}"))
        })
        .collect()
}

/// A sample of the server's `/metrics` at `addr`: the value of the line
/// starting with `series ` (name and labels), 0 when there is none.
pub fn metric(addr: std::net::SocketAddr, series: &str) -> f64 {
    let (status, body) = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Every file under `dir` (recursively).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// `len` bytes no compression shrinks.
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// `curl` of `path` on the server: status, response head, body.
pub fn curl(server: &Server, path: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let work = tempfile::tempdir().unwrap();
    let (head, body) = (work.path().join("head"), work.path().join("body"));
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-D",
            head.to_str().unwrap(),
            "-o",
            body.to_str().unwrap(),
        ])
        .args(["-w", "%{http_code}"])
        .args(extra)
        .arg(format!("{}{path}", server.url))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    (
        status,
        std::fs::read_to_string(head).unwrap(),
        std::fs::read(body).unwrap_or_default(),
    )
}

/// The value of header `name` in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A private repository `acme/secret` made with the admin token `admin`, and
/// `src`'s `main` pushed to it through `url` (a URL of `acme/app` with
/// credentials); its URL.
pub fn private_copy(server: &Server, admin: &str, url: &str, src: &Path) -> String {
    let (status, body) = api_request(
        server,
        "POST",
        "/api/v1/repos",
        Some(admin),
        r#"{"owner":"acme","name":"secret","private":true}"#,
    );
    assert_eq!(status, 201, "{body}");
    let secret = url.replace("/acme/app.git", "/acme/secret.git");
    git(src, &["push", "-q", &secret, "main"]);
    secret
}

/// A commit as the API and webhooks describe it, every field from git: id,
/// tree, parents, the raw message (`cat-file`), author and committer with
/// `%aI`/`%cI` dates.
pub fn commit_as_git_shows_it(src: &Path, commit: &str) -> serde_json::Value {
    let raw = git(src, &["cat-file", "commit", commit]);
    let message = raw.split_once("\n\n").map_or("", |(_, m)| m);
    let field = |format: &str| {
        git(src, &["log", "-1", &format!("--format={format}"), commit])
            .trim_end_matches('\n')
            .to_string()
    };
    let person = |format: &str| {
        let out = field(format);
        let fields: Vec<&str> = out.split('\x01').collect();
        serde_json::json!({ "name": fields[0], "email": fields[1], "date": fields[2] })
    };
    let parents: Vec<String> = field("%P").split_whitespace().map(String::from).collect();
    serde_json::json!({
        "id": commit,
        "tree": field("%T"),
        "parents": parents,
        "message": message,
        "author": person("%an%x01%ae%x01%aI"),
        "committer": person("%cn%x01%ce%x01%cI"),
    })
}

/// `revision` as a query value.
pub fn query(revision: &str) -> String {
    revision
        .replace('^', "%5E")
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace('@', "%40")
}

/// What `git rev-parse` resolves a revision to, as a commit; `None` when git
/// cannot.
pub fn git_commit_of(repo: &Path, revision: &str) -> Option<String> {
    let out = git_cmd(repo)
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("{revision}^{{commit}}"),
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}
