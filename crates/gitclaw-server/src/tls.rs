//! HTTPS on the server's own listener (`GITCLAW_TLS_CERT`, `GITCLAW_TLS_KEY`).
//!
//! The certificate chain and its key are read at start, and read again when
//! either file changes: a renewal (certbot, cert-manager swapping a mounted
//! secret) needs no restart. The files are looked at, at most once a
//! [`CHECK_EVERY`], by the handshake that comes after it. A change that does
//! not load (a half-written file, a key that does not match) is logged and
//! the pair in use kept until the files change again. When the certificate
//! in use expires is exported (`gitclaw_tls_certificate_expiry_timestamp_seconds`)
//! so a renewal that never happened can be alerted on.
//!
//! Not for: anything after the handshake (`connections` serves the stream).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// How often the files are looked at for a change.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where the certificate chain and its private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why the certificate files cannot be used, by the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file (`GITCLAW_TLS_CERT`).
    #[error("{0}")]
    Cert(String),
    /// The key file (`GITCLAW_TLS_KEY`), or a key that is not the certificate's.
    #[error("{0}")]
    Key(String),
}

impl TlsError {
    /// The setting at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            TlsError::Cert(_) => "GITCLAW_TLS_CERT",
            TlsError::Key(_) => "GITCLAW_TLS_KEY",
        }
    }
}

impl TlsFiles {
    /// The chain and key, checked to belong together; the error names the file
    /// at fault.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
        };
        let cert_pem = read(&self.cert).map_err(TlsError::Cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsError::Cert(format!("{}: {err}", self.cert.display())))?;
        if chain.is_empty() {
            return Err(TlsError::Cert(format!(
                "{} holds no PEM certificate",
                self.cert.display()
            )));
        }
        let key_pem = read(&self.key).map_err(TlsError::Key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
            TlsError::Key(format!(
                "{} holds no PEM private key: {err}",
                self.key.display()
            ))
        })?;
        CertifiedKey::from_der(chain, key, &provider()).map_err(|err| {
            TlsError::Key(format!(
                "{} is not the key of the certificate in {}: {err}",
                self.key.display(),
                self.cert.display()
            ))
        })
    }

    /// What changes when either file is replaced or rewritten.
    fn stamp(&self) -> Option<[(SystemTime, u64); 2]> {
        let of = |path: &Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        Some([of(&self.cert)?, of(&self.key)?])
    }

    /// The acceptor for the listener: the files are read now (an error says
    /// why they cannot be used) and again whenever they change; `expiry` is
    /// set to when the certificate in use expires (unix seconds).
    pub fn acceptor(
        &self,
        expiry: prometheus::IntGauge,
    ) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let key = Arc::new(self.load()?);
        expiry.set(not_after(&key).unwrap_or(0));
        let resolver = Reloading {
            current: Mutex::new(Current {
                stamp: self.stamp(),
                key,
                checked: Instant::now(),
            }),
            files: self.clone(),
            expiry,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::Cert(err.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        // The server speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// The pair in use, and what the files looked like when it was read.
struct Current {
    stamp: Option<[(SystemTime, u64); 2]>,
    key: Arc<CertifiedKey>,
    checked: Instant,
}

#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    current: Mutex<Current>,
    expiry: prometheus::IntGauge,
}

/// When the end-entity certificate of `key` expires, in unix seconds.
fn not_after(key: &CertifiedKey) -> Option<i64> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(key.end_entity_cert().ok()?).ok()?;
    let at = cert.tbs_certificate.validity.not_after.to_unix_duration();
    i64::try_from(at.as_secs()).ok()
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current")
            .field("stamp", &self.stamp)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.checked.elapsed() >= CHECK_EVERY {
            current.checked = Instant::now();
            let stamp = self.files.stamp();
            if stamp != current.stamp {
                current.stamp = stamp;
                match self.files.load() {
                    Ok(key) => {
                        self.expiry.set(not_after(&key).unwrap_or(0));
                        current.key = Arc::new(key);
                        tracing::info!(
                            cert = %self.files.cert.display(),
                            "the TLS certificate changed on disk and is now in use"
                        );
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        "the TLS certificate files changed but cannot be used; the previous certificate stays in use"
                    ),
                }
            }
        }
        Some(current.key.clone())
    }
}
