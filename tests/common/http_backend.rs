//! C git's `git http-backend` under lighttpd, the reference server of the
//! parity tests and of the load harness's test.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
};

use super::wait_until;

/// `git http-backend` behind lighttpd on a free port, serving `root/*.git`.
pub struct HttpBackend {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl HttpBackend {
    pub fn start(root: &Path) -> HttpBackend {
        // lighttpd cannot bind port 0 and say which port it got: it is given a
        // port found free a moment before, which someone else may take first.
        // Then it exits, and it gets another.
        let mut failures = Vec::new();
        for _ in 0..5 {
            match HttpBackend::start_on_a_free_port(root) {
                Ok(backend) => return backend,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("lighttpd did not start on any of 5 free ports: {failures:#?}");
    }

    /// lighttpd on a port that was free a moment ago; what it said if it exited.
    fn start_on_a_free_port(root: &Path) -> Result<HttpBackend, String> {
        let lighttpd = ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("lighttpd is installed (scripts/test.sh installs it)");
        let exec_path = String::from_utf8(
            Command::new("git")
                .arg("--exec-path")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let backend = PathBuf::from(exec_path.trim()).join("git-http-backend");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its `Server:` header tells this lighttpd from whatever else may answer on the port.
        let tag = format!("parity-{}", dir.path().display());
        let conf = dir.path().join("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server.document-root = "{root}"
server.port = {port}
server.bind = "127.0.0.1"
server.tag = "{tag}"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.errorlog = "{dir}/error.log"
alias.url = ("/git/" => "{backend}/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
"#,
                root = root.display(),
                dir = dir.path().display(),
                backend = backend.display(),
            ),
        )
        .unwrap();
        let child = Command::new(lighttpd)
            .arg("-D")
            .arg("-f")
            .arg(&conf)
            .spawn()
            .unwrap();
        let mut backend = HttpBackend {
            child,
            port,
            _dir: dir,
        };
        let mut exited = false;
        wait_until(
            std::time::Duration::from_secs(30),
            "lighttpd to answer on its port, or exit",
            || {
                exited = backend.child.try_wait().unwrap().is_some();
                exited || backend.answers_as(&tag)
            },
        );
        if exited {
            let log =
                std::fs::read_to_string(backend._dir.path().join("error.log")).unwrap_or_default();
            return Err(format!("port {port}: {}", log.trim()));
        }
        Ok(backend)
    }

    /// Whether this lighttpd answers on its port (and not someone else).
    fn answers_as(&self, tag: &str) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let mut answer = Vec::new();
        if stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n").is_err()
            || stream.read_to_end(&mut answer).is_err()
        {
            return false;
        }
        String::from_utf8_lossy(&answer)
            .lines()
            .any(|line| line.trim_end() == format!("Server: {tag}"))
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
