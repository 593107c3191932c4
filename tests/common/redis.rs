//! A real `redis-server` on a free loopback port, for the shared-cache tests:
//! killed and started again on the same port to test outages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::tls::Certs;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Served over TLS only, with this certificate.
    tls: Option<Certs>,
    /// Clients must present a certificate from the same CA.
    client_auth: bool,
}

impl RedisServer {
    /// Start one (no persistence: a restart comes back empty).
    pub fn start() -> RedisServer {
        RedisServer::start_with(None, false)
    }

    /// One that speaks only TLS, with a certificate from `certs`.
    pub fn start_tls(certs: Certs) -> RedisServer {
        RedisServer::start_with(Some(certs), false)
    }

    /// One that speaks only TLS and admits only clients that present a
    /// certificate from `certs`' CA (`tls-auth-clients yes`).
    pub fn start_mtls(certs: Certs) -> RedisServer {
        RedisServer::start_with(Some(certs), true)
    }

    fn start_with(tls: Option<Certs>, client_auth: bool) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            tls,
            client_auth,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// How it listens: `--port P`, or TLS alone on P.
    fn listen_args(&self) -> Vec<String> {
        let port = self.port.to_string();
        let Some(certs) = &self.tls else {
            return vec!["--port".into(), port];
        };
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port,
            "--tls-cert-file".into(),
            path(certs.cert()),
            "--tls-key-file".into(),
            path(certs.key()),
            "--tls-ca-cert-file".into(),
            path(certs.ca()),
            "--tls-auth-clients".into(),
            if self.client_auth { "yes" } else { "no" }.into(),
        ]
    }

    /// Start it (again) on its port; returns once it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(self.listen_args())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                // DEBUG SLEEP stalls it, for the tests of a Redis that does not answer.
                "--enable-debug-command",
                "local",
                "--dir",
                self.dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        self.child = Some(child);
        super::wait_until(Duration::from_secs(20), "redis-server answers", || {
            self.cli(&["PING"]).trim() == "PONG"
        });
    }

    /// SIGKILL: gone at once, with everything it held.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis-cli` against it; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cli = Command::new("redis-cli");
        cli.args(["-p", &self.port.to_string()]);
        if let Some(certs) = &self.tls {
            cli.arg("--tls").arg("--cacert").arg(certs.ca());
            cli.arg("--cert").arg(certs.client_cert());
            cli.arg("--key").arg(certs.client_key());
        }
        let out = cli.args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The keys it holds that match `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["--scan", "--pattern", pattern])
            .lines()
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
