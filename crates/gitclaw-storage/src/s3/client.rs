//! The settings of the S3 backend and the SDK client built from them.
//!
//! Everything that shapes requests before they are sent lives here: the trusted
//! CA, the TLS provider, the connect and read timeouts, static or default-chain
//! credentials, path-style addressing and the checksum mode. The SDK's own
//! retries are switched off here, because [`super::retry`] is the one policy.

use std::{path::PathBuf, time::Duration};

use aws_sdk_s3::{
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, SharedCredentialsProvider,
    },
    Client,
};

use crate::error::{Result, StorageError};

/// Settings of the S3 backend (the `S3_*` variables). Validation of the text
/// values, naming the variables, is the configuration loader's job; this is the
/// checked result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint (MinIO, R2, Garage…); `None` is AWS.
    pub endpoint: Option<String>,
    /// Static keys; `None` uses the AWS default credential chain.
    pub credentials: Option<(String, String)>,
    pub path_style: bool,
    pub auto_create_bucket: bool,
    /// PEM of an extra trusted CA.
    pub ca_cert: Option<PathBuf>,
    pub max_retries: u32,
    pub retry_max_backoff: Duration,
    pub slow_op: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl S3Settings {
    /// Settings with the documented defaults for everything but bucket and region.
    pub fn new(bucket: impl Into<String>, region: impl Into<String>) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            region: region.into(),
            endpoint: None,
            credentials: None,
            path_style: false,
            auto_create_bucket: false,
            ca_cert: None,
            max_retries: 3,
            retry_max_backoff: Duration::from_secs(30),
            slow_op: Duration::from_millis(1000),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// The SDK client for `settings`. Nothing is sent yet.
pub(super) async fn build_client(settings: &S3Settings) -> Result<Client> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let mut trust = tls::TrustStore::default();
    if let Some(path) = &settings.ca_cert {
        let pem = std::fs::read(path).map_err(StorageError::io(format!(
            "reading the CA certificate {}",
            path.display()
        )))?;
        trust = trust.with_pem_certificate(pem);
    }
    let tls_context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|err| StorageError::Other(format!("TLS setup: {err}")))?;
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context)
        .build_https();
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .http_client(http_client)
        .timeout_config(timeouts)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
    if let Some((id, secret)) = &settings.credentials {
        loader = loader.credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "gitclaw-static",
        )));
    }
    let sdk_config = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(settings.path_style)
        // Checksums only where the API requires them: many S3-compatible stores
        // do not take the newer flexible-checksum headers on every call.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    Ok(Client::from_conf(builder.build()))
}
