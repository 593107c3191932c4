//! TLS for the tests: a throw-away CA and a server certificate it signed for
//! 127.0.0.1 (made by `scripts/test-certs.sh`, as for the test PostgreSQL), and
//! a TLS front that hands each connection, decrypted, to a plain TCP service.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

/// A CA and a server certificate it signed, in a directory kept while this lives.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        Certs::valid_for(2)
    }

    /// Certificates that expire `days` from now.
    pub fn valid_for(days: u32) -> Certs {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-certs.sh");
        let out = Command::new(&script)
            .env("CERT_DAYS", days.to_string())
            .arg(dir.path())
            .output()
            .expect("scripts/test-certs.sh runs (it needs openssl)");
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Certs { dir }
    }

    /// The CA's certificate: what a client is told to trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// When the server certificate expires, in unix seconds, as openssl reads it.
    pub fn server_not_after(&self) -> i64 {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-in"])
            .arg(self.cert())
            .output()
            .expect("openssl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let date = text.trim().strip_prefix("notAfter=").expect("notAfter=");
        let out = Command::new("date")
            .args(["-u", "-d", date, "+%s"])
            .output()
            .expect("date runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("seconds")
    }

    /// A client certificate the CA signed (for the name `gitclaw_cert`).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// A TLS acceptor presenting the server certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(self.cert())
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("server.pem holds certificates");
        let key = PrivateKeyDer::from_pem_file(self.key()).expect("server.key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate and key");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// TLS on a loopback port, each connection handed decrypted to `target`:
/// an `https://` face for a plain-HTTP service. It serves on its own thread
/// until the test process ends; returns its address.
pub fn tls_front(certs: &Certs, target: SocketAddr) -> SocketAddr {
    let acceptor = certs.acceptor();
    let (send, recv) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            send.send(listener.local_addr().expect("address"))
                .expect("the test waits for the address");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    recv.recv_timeout(Duration::from_secs(10))
        .expect("the TLS front listens")
}
