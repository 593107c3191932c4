//! The S3 backend: any S3-compatible store (AWS S3, MinIO, R2, Garage, Ceph RGW)
//! through aws-sdk-s3.
//!
//! Every call goes through [`S3Backend::call`], which owns the resilience policy:
//! retries of retryable failures (HTTP 500/502/503/504, timeouts, refused or
//! dropped connections, bodies cut off) with exponential backoff and jitter up to
//! `max_retries`, capped at `retry_max_backoff`; an adaptive pause shared by all
//! calls that grows on `503 SlowDown` and decays on success; a DEBUG line with
//! the request id for every call, a warning for calls slower than `slow_op`, and
//! the request id on every error. The SDK's own retries are off so this is the
//! one policy.
//!
//! Uploads above [`MULTIPART_THRESHOLD`] go up in parts read from the file (or
//! sliced from the buffer), so a pack is never held whole in memory.

use std::{
    collections::BTreeMap,
    future::Future,
    ops::Range,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_sdk_s3::{
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, SharedCredentialsProvider,
    },
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    operation::RequestId,
    primitives::{ByteStream, Length},
    types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier},
    Client,
};
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use crate::{
    backend::{ObjectMeta, ObjectStorageBackend, PutOptions},
    error::{Result, StorageError},
    keys::{KeyPrefix, ObjectKey},
};

/// Objects larger than this go up by multipart upload (SPEC §4).
pub const MULTIPART_THRESHOLD: u64 = 5 * 1024 * 1024;
/// Size of each uploaded part (S3 allows at most 10,000 parts; larger objects get larger parts).
const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Parts or copies in flight at once.
const CONCURRENCY: usize = 4;
/// CopyObject copies at most 5 GiB; larger objects are copied in parts.
const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
const COPY_PART_SIZE: u64 = 1024 * 1024 * 1024;
/// DeleteObjects takes at most this many keys.
const DELETE_BATCH: usize = 1000;
/// First retry delay; each further retry doubles it (before jitter and the cap).
const BASE_BACKOFF: Duration = Duration::from_millis(100);

/// Settings of the S3 backend (SPEC §2). Validation of the text values, naming
/// the variables, is the configuration loader's job; this is the checked result.
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

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    error: StorageError,
    retryable: bool,
    /// The store asked us to slow down.
    throttled: bool,
    request_id: Option<String>,
}

impl Failure {
    fn fatal(error: StorageError) -> Failure {
        Failure {
            error,
            retryable: false,
            throttled: false,
            request_id: None,
        }
    }

    /// The connection broke while a body was on its way.
    fn transfer(key: &str, err: impl std::fmt::Display) -> Failure {
        Failure {
            error: StorageError::Connection(format!("transfer of {key} broke off: {err}")),
            retryable: true,
            throttled: false,
            request_id: None,
        }
    }

    fn local_io(context: String, source: std::io::Error) -> Failure {
        Failure::fatal(StorageError::Io { context, source })
    }
}

/// Sort an SDK error into what the caller can act on.
fn classify<E>(
    op: &str,
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    let detail = DisplayErrorContext(&err).to_string();
    let (error, retryable, throttled) = match &err {
        SdkError::TimeoutError(_) => (
            StorageError::Connection(format!("{op} {key} timed out")),
            true,
            false,
        ),
        SdkError::DispatchFailure(failure) if !failure.is_user() => (
            StorageError::Connection(format!("{op} {key}: {detail}")),
            true,
            false,
        ),
        SdkError::ResponseError(_) => (
            StorageError::Connection(format!("{op} {key}: answer cut off: {detail}")),
            true,
            false,
        ),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            let what = format!("{op} {key}: HTTP {status} {code} {message}")
                .trim_end()
                .to_string();
            match (status, code) {
                (_, "SlowDown") => (StorageError::RateLimited(what), true, true),
                (_, "NoSuchBucket") => (StorageError::BucketNotFound(what), false, false),
                (404, _) | (_, "NoSuchKey") => (
                    StorageError::NotFound {
                        key: key.to_string(),
                    },
                    false,
                    false,
                ),
                (401 | 403, _) => (StorageError::AccessDenied(what), false, false),
                (500 | 502 | 503 | 504, _) => (StorageError::Connection(what), true, false),
                _ => (StorageError::Other(what), false, false),
            }
        }
        _ => (
            StorageError::Other(format!("{op} {key}: {detail}")),
            false,
            false,
        ),
    };
    Failure {
        error,
        retryable,
        throttled,
        request_id,
    }
}

/// The adaptive pause every call waits before it is sent: doubled on each
/// `503 SlowDown`, shrunk by a fifth on each success.
#[derive(Debug, Default)]
struct Throttle {
    pause: Mutex<Duration>,
}

impl Throttle {
    fn current(&self) -> Duration {
        *self.pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slow_down(&self, cap: Duration) {
        let mut pause = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        *pause = (*pause * 2).max(Duration::from_millis(50)).min(cap);
    }

    fn relax(&self) {
        let mut pause = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        if !pause.is_zero() {
            *pause = (*pause * 4) / 5;
            if *pause < Duration::from_millis(5) {
                *pause = Duration::ZERO;
            }
        }
    }
}

/// The delay before retry number `attempt` (0-based): `BASE · 2^attempt`, capped,
/// with "equal jitter" (a random point in its upper half), so delays still grow.
pub fn backoff_delay(attempt: u32, cap: Duration) -> Duration {
    let full = BASE_BACKOFF
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(cap);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// An S3-compatible object store.
#[derive(Clone)]
pub struct S3Backend {
    client: Client,
    settings: Arc<S3Settings>,
    throttle: Arc<Throttle>,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("bucket", &self.settings.bucket)
            .field("endpoint", &self.settings.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Build the client. Nothing is sent yet; [`S3Backend::verify`] checks the store.
    pub async fn new(settings: S3Settings) -> Result<S3Backend> {
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
        Ok(S3Backend {
            client: Client::from_conf(builder.build()),
            settings: Arc::new(settings),
            throttle: Arc::new(Throttle::default()),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// Check that the bucket exists (creating it when allowed) and that the
    /// credentials can write, read and delete in it.
    pub async fn verify(&self) -> Result<()> {
        let bucket = self.bucket().to_string();
        let exists = self
            .call("HeadBucket", &bucket, || async {
                self.client
                    .head_bucket()
                    .bucket(&bucket)
                    .send()
                    .await
                    .map_err(|e| classify("HeadBucket", &bucket, e))
            })
            .await;
        match exists {
            Ok(_) => {}
            Err(StorageError::NotFound { .. } | StorageError::BucketNotFound(_))
                if self.settings.auto_create_bucket =>
            {
                self.create_bucket().await?;
            }
            Err(StorageError::NotFound { .. } | StorageError::BucketNotFound(_)) => {
                return Err(StorageError::BucketNotFound(format!(
                    "bucket '{bucket}' does not exist; create it or set S3_AUTO_CREATE_BUCKET=true"
                )))
            }
            Err(err) => return Err(err),
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let probe = format!("gitclaw-probe/{}-{nanos}", std::process::id());
        let payload = Bytes::from_static(b"gitclaw write check");
        self.put_raw(&probe, payload.clone(), &PutOptions::default())
            .await
            .map_err(|err| with_context(err, "cannot write to the bucket"))?;
        let read = self
            .get_raw(&probe)
            .await
            .map_err(|err| with_context(err, "cannot read back from the bucket"))?;
        if read != payload {
            return Err(StorageError::Other(
                "the bucket returned other bytes than were written".into(),
            ));
        }
        self.delete_raw(&probe)
            .await
            .map_err(|err| with_context(err, "cannot delete from the bucket"))?;
        Ok(())
    }

    async fn create_bucket(&self) -> Result<()> {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        let bucket = self.bucket().to_string();
        let region = self.settings.region.clone();
        self.call("CreateBucket", &bucket, || async {
            let mut request = self.client.create_bucket().bucket(&bucket);
            // us-east-1 is the one region that must not be named.
            if region != "us-east-1" {
                request = request.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region.as_str()))
                        .build(),
                );
            }
            match request.send().await {
                Ok(_) => Ok(()),
                Err(err)
                    if matches!(
                        err.as_service_error().and_then(|e| e.code()),
                        Some("BucketAlreadyOwnedByYou")
                    ) =>
                {
                    Ok(())
                }
                Err(err) => Err(classify("CreateBucket", &bucket, err)),
            }
        })
        .await?;
        tracing::info!(bucket = %bucket, "created the S3 bucket");
        Ok(())
    }

    /// Run one logical S3 call under the retry, throttle, logging and slow-call policy.
    async fn call<T, F, Fut>(&self, op: &'static str, key: &str, mut attempt_fn: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let pause = self.throttle.current();
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let result = attempt_fn().await;
            match result {
                Ok(value) => {
                    self.throttle.relax();
                    let elapsed = started.elapsed();
                    if elapsed > self.settings.slow_op {
                        tracing::warn!(
                            op,
                            key,
                            duration_ms = elapsed.as_millis() as u64,
                            threshold_ms = self.settings.slow_op.as_millis() as u64,
                            retries = attempt,
                            "slow S3 call: {op} {key} took {} ms",
                            elapsed.as_millis()
                        );
                    } else {
                        tracing::debug!(
                            op,
                            key,
                            duration_ms = elapsed.as_millis() as u64,
                            "S3 call"
                        );
                    }
                    return Ok(value);
                }
                Err(failure) => {
                    if failure.throttled {
                        self.throttle.slow_down(self.settings.retry_max_backoff);
                    }
                    let request_id = failure.request_id.as_deref().unwrap_or("-");
                    if failure.retryable && attempt < self.settings.max_retries {
                        let delay = backoff_delay(attempt, self.settings.retry_max_backoff);
                        attempt += 1;
                        tracing::warn!(
                            op,
                            key,
                            request_id,
                            attempt,
                            max_retries = self.settings.max_retries,
                            delay_ms = delay.as_millis() as u64,
                            error = %failure.error,
                            "S3 call failed; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    if matches!(failure.error, StorageError::NotFound { .. }) {
                        tracing::debug!(op, key, request_id, "S3 key not found");
                    } else {
                        tracing::error!(
                            op,
                            key,
                            request_id,
                            retries = attempt,
                            error = %failure.error,
                            "S3 call failed"
                        );
                    }
                    return Err(failure.error);
                }
            }
        }
    }

    async fn put_raw(&self, key: &str, data: Bytes, opts: &PutOptions) -> Result<()> {
        self.put_source(key, &PartSource::Memory(data), opts).await
    }

    /// Upload `source` as `key`: one PutObject, or a multipart upload above 5 MiB.
    async fn put_source(
        &self,
        key: &str,
        source: &PartSource<'_>,
        opts: &PutOptions,
    ) -> Result<()> {
        let size = source.len();
        if size > MULTIPART_THRESHOLD {
            return self.multipart_upload(key, source, opts).await;
        }
        self.call("PutObject", key, || async {
            let body = source.body(0, size).await?;
            self.client
                .put_object()
                .bucket(self.bucket())
                .key(key)
                .content_length(size as i64)
                .set_content_type(opts.content_type.clone())
                .set_metadata(metadata_map(opts))
                .body(body)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("PutObject", key, e))
        })
        .await
    }

    async fn get_raw(&self, key: &str) -> Result<Bytes> {
        self.get_bytes(key, None).await
    }

    /// The object's bytes, or those of an HTTP `Range` (`bytes=a-b`).
    async fn get_bytes(&self, key: &str, range: Option<&str>) -> Result<Bytes> {
        self.call("GetObject", key, || async {
            let out = self
                .client
                .get_object()
                .bucket(self.bucket())
                .key(key)
                .set_range(range.map(str::to_string))
                .send()
                .await
                .map_err(|e| classify("GetObject", key, e))?;
            let data = out
                .body
                .collect()
                .await
                .map_err(|e| Failure::transfer(key, e))?;
            Ok(data.into_bytes())
        })
        .await
    }

    async fn delete_raw(&self, key: &str) -> Result<()> {
        self.call("DeleteObject", key, || async {
            self.client
                .delete_object()
                .bucket(self.bucket())
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("DeleteObject", key, e))
        })
        .await
    }

    async fn head_raw(&self, key: &str) -> Result<ObjectMeta> {
        self.call("HeadObject", key, || async {
            let out = self
                .client
                .head_object()
                .bucket(self.bucket())
                .key(key)
                .send()
                .await
                .map_err(|e| classify("HeadObject", key, e))?;
            Ok(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_string),
                metadata: out
                    .metadata()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                last_modified: out.last_modified().and_then(to_system_time),
            })
        })
        .await
    }

    /// Every key under `prefix` with its size and time, following pagination, sorted.
    async fn list_raw(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .call("ListObjectsV2", prefix, || async {
                    self.client
                        .list_objects_v2()
                        .bucket(self.bucket())
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListObjectsV2", prefix, e))
                })
                .await?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    all.push(ObjectMeta {
                        key: key.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        content_type: None,
                        metadata: BTreeMap::new(),
                        last_modified: object.last_modified().and_then(to_system_time),
                    });
                }
            }
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(next)) => token = Some(next.to_string()),
                _ => break,
            }
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    /// Upload `source` as `key` in parts; the upload is aborted if any part fails.
    async fn multipart_upload(
        &self,
        key: &str,
        source: &PartSource<'_>,
        opts: &PutOptions,
    ) -> Result<()> {
        let size = source.len();
        let part_size = PART_SIZE.max(size.div_ceil(10_000));
        let upload_id = self.create_upload(key, opts).await?;
        let parts: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_size).max(1))
            .map(|i| {
                let start = i * part_size;
                (i as i32 + 1, start, part_size.min(size - start))
            })
            .collect();
        let upload_id_ref = upload_id.as_str();
        let uploaded: Result<Vec<CompletedPart>> = stream::iter(parts)
            .map(|(number, offset, len)| async move {
                let etag = self
                    .call("UploadPart", key, || async move {
                        let body = source.body(offset, len).await?;
                        let out = self
                            .client
                            .upload_part()
                            .bucket(self.bucket())
                            .key(key)
                            .upload_id(upload_id_ref)
                            .part_number(number)
                            .content_length(len as i64)
                            .body(body)
                            .send()
                            .await
                            .map_err(|e| classify("UploadPart", key, e))?;
                        Ok(out.e_tag().map(str::to_string))
                    })
                    .await?;
                Ok(CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(etag)
                    .build())
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await;
        let result = match uploaded {
            Ok(parts) => self.complete_upload(key, upload_id_ref, parts).await,
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            self.abort_upload(key, upload_id_ref).await;
            return Err(match err {
                err @ (StorageError::Connection(_)
                | StorageError::RateLimited(_)
                | StorageError::AccessDenied(_)
                | StorageError::BucketNotFound(_)
                | StorageError::Io { .. }) => err,
                other => StorageError::UploadFailed {
                    key: key.to_string(),
                    detail: other.to_string(),
                },
            });
        }
        Ok(())
    }

    /// Start a multipart upload; returns its id.
    async fn create_upload(&self, key: &str, opts: &PutOptions) -> Result<String> {
        self.call("CreateMultipartUpload", key, || async {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(self.bucket())
                .key(key)
                .set_content_type(opts.content_type.clone())
                .set_metadata(metadata_map(opts))
                .send()
                .await
                .map_err(|e| classify("CreateMultipartUpload", key, e))?;
            out.upload_id().map(str::to_string).ok_or_else(|| {
                Failure::fatal(StorageError::UploadFailed {
                    key: key.to_string(),
                    detail: "the store returned no upload id".into(),
                })
            })
        })
        .await
    }

    /// Join the uploaded parts into the object.
    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<()> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.call("CompleteMultipartUpload", key, || async {
            self.client
                .complete_multipart_upload()
                .bucket(self.bucket())
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(completed.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("CompleteMultipartUpload", key, e))
        })
        .await
    }

    /// Best effort: a failed abort leaves parts the bucket's lifecycle rules reclaim.
    async fn abort_upload(&self, key: &str, upload_id: &str) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(err) = aborted {
            tracing::warn!(key, upload_id, error = %DisplayErrorContext(&err), "cannot abort a multipart upload");
        }
    }

    /// Server-side copy of one object, in parts when it is over 5 GiB.
    async fn copy_object(&self, from: &str, to: &str, size: u64) -> Result<()> {
        let source = format!("{}/{}", self.bucket(), from);
        if size <= MAX_SINGLE_COPY {
            return self
                .call("CopyObject", to, || async {
                    self.client
                        .copy_object()
                        .bucket(self.bucket())
                        .key(to)
                        .copy_source(&source)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| classify("CopyObject", to, e))
                })
                .await;
        }
        let meta = self.head_raw(from).await?;
        let opts = PutOptions {
            content_type: meta.content_type,
            metadata: meta.metadata.into_iter().collect(),
        };
        let upload_id = self.create_upload(to, &opts).await?;
        let mut parts = Vec::new();
        let mut result = Ok(());
        for (i, start) in (0..size).step_by(COPY_PART_SIZE as usize).enumerate() {
            let end = (start + COPY_PART_SIZE).min(size) - 1;
            let number = i as i32 + 1;
            let copied = self
                .call("UploadPartCopy", to, || async {
                    self.client
                        .upload_part_copy()
                        .bucket(self.bucket())
                        .key(to)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .copy_source(&source)
                        .copy_source_range(format!("bytes={start}-{end}"))
                        .send()
                        .await
                        .map_err(|e| classify("UploadPartCopy", to, e))
                })
                .await;
            match copied {
                Ok(out) => parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_string),
                        )
                        .build(),
                ),
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self.complete_upload(to, &upload_id, parts).await;
        }
        if result.is_err() {
            self.abort_upload(to, &upload_id).await;
        }
        result
    }

    /// Delete up to 1000 keys in one DeleteObjects call; returns the keys that failed.
    async fn delete_batch(&self, keys: &[String]) -> Result<Vec<(String, String)>> {
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| StorageError::Other(format!("DeleteObjects request: {err}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|err| StorageError::Other(format!("DeleteObjects request: {err}")))?;
        let label = keys.first().map(String::as_str).unwrap_or("");
        let out = self
            .call("DeleteObjects", label, || async {
                self.client
                    .delete_objects()
                    .bucket(self.bucket())
                    .delete(delete.clone())
                    .send()
                    .await
                    .map_err(|e| classify("DeleteObjects", label, e))
            })
            .await?;
        Ok(out
            .errors()
            .iter()
            .filter_map(|e| {
                let key = e.key()?.to_string();
                let why = format!(
                    "{} {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or("")
                );
                Some((key, why.trim().to_string()))
            })
            .collect())
    }
}

fn with_context(err: StorageError, context: &str) -> StorageError {
    match err {
        StorageError::AccessDenied(detail) => {
            StorageError::AccessDenied(format!("{context}: {detail}"))
        }
        StorageError::Connection(detail) => {
            StorageError::Connection(format!("{context}: {detail}"))
        }
        StorageError::BucketNotFound(detail) => {
            StorageError::BucketNotFound(format!("{context}: {detail}"))
        }
        other => StorageError::Other(format!("{context}: {other}")),
    }
}

/// User metadata as the SDK wants it, `None` when there is none.
fn metadata_map(opts: &PutOptions) -> Option<std::collections::HashMap<String, String>> {
    (!opts.metadata.is_empty()).then(|| opts.metadata.iter().cloned().collect())
}

/// Where the bytes of a multipart upload come from.
enum PartSource<'a> {
    Memory(Bytes),
    File(&'a Path, u64),
}

impl PartSource<'_> {
    fn len(&self) -> u64 {
        match self {
            PartSource::Memory(data) => data.len() as u64,
            PartSource::File(_, size) => *size,
        }
    }

    /// A fresh body for one attempt of one part; a file part streams from disk.
    async fn body(&self, offset: u64, len: u64) -> std::result::Result<ByteStream, Failure> {
        match self {
            PartSource::Memory(data) => Ok(ByteStream::from(
                data.slice(offset as usize..(offset + len) as usize),
            )),
            PartSource::File(path, _) => ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|err| {
                    Failure::local_io(
                        format!("reading {}", path.display()),
                        std::io::Error::other(err),
                    )
                }),
        }
    }
}

#[async_trait]
impl ObjectStorageBackend for S3Backend {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &ObjectKey, data: Bytes, opts: &PutOptions) -> Result<()> {
        self.put_raw(key.as_str(), data, opts).await
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, opts: &PutOptions) -> Result<()> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(StorageError::io(format!("reading {}", path.display())))?
            .len();
        self.put_source(key.as_str(), &PartSource::File(path, size), opts)
            .await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.get_raw(key.as_str()).await
    }

    async fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        self.get_bytes(key.as_str(), Some(&header)).await
    }

    async fn get_to_file(&self, key: &ObjectKey, dest: &Path) -> Result<u64> {
        let key = key.as_str();
        let dir = dest.parent().unwrap_or_else(|| Path::new("."));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(StorageError::io(format!("creating {}", dir.display())))?;
        let (tmp, size) = self
            .call("GetObject", key, || async {
                let out = self
                    .client
                    .get_object()
                    .bucket(self.bucket())
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| classify("GetObject", key, e))?;
                let expected = out.content_length();
                let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
                    Failure::local_io(format!("creating a file in {}", dir.display()), e)
                })?;
                let std_file = tmp.reopen().map_err(|e| {
                    Failure::local_io(format!("opening {}", tmp.path().display()), e)
                })?;
                let mut file = tokio::fs::File::from_std(std_file);
                let mut body = out.body.into_async_read();
                let size = tokio::io::copy(&mut body, &mut file)
                    .await
                    .map_err(|e| Failure::transfer(key, e))?;
                file.flush().await.map_err(|e| {
                    Failure::local_io(format!("writing {}", tmp.path().display()), e)
                })?;
                if let Some(expected) = expected {
                    if expected >= 0 && expected as u64 != size {
                        return Err(Failure::transfer(
                            key,
                            format!("got {size} of {expected} bytes"),
                        ));
                    }
                }
                Ok((tmp, size))
            })
            .await?;
        tmp.persist(dest).map_err(|err| StorageError::Io {
            context: format!("moving the download to {}", dest.display()),
            source: err.error,
        })?;
        Ok(size)
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.head_raw(key.as_str()).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.delete_raw(key.as_str()).await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectMeta>> {
        self.list_raw(prefix.as_str()).await
    }

    async fn delete_prefix(&self, prefix: &KeyPrefix) -> Result<u64> {
        let keys: Vec<String> = self
            .list_raw(prefix.as_str())
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        let mut deleted = 0u64;
        for batch in keys.chunks(DELETE_BATCH) {
            let mut pending: Vec<String> = batch.to_vec();
            let mut attempt = 0u32;
            loop {
                let failed = self.delete_batch(&pending).await?;
                deleted += (pending.len() - failed.len()) as u64;
                if failed.is_empty() {
                    break;
                }
                if attempt >= self.settings.max_retries {
                    let (key, why) = &failed[0];
                    return Err(StorageError::Other(format!(
                        "{} key(s) under {} could not be deleted after {attempt} retries (first: {key}: {why})",
                        failed.len(),
                        prefix.as_str()
                    )));
                }
                tracing::warn!(
                    prefix = prefix.as_str(),
                    failed = failed.len(),
                    attempt = attempt + 1,
                    "some keys were not deleted; retrying them"
                );
                tokio::time::sleep(backoff_delay(attempt, self.settings.retry_max_backoff)).await;
                attempt += 1;
                pending = failed.into_iter().map(|(key, _)| key).collect();
            }
        }
        Ok(deleted)
    }

    async fn copy_prefix(&self, from: &KeyPrefix, to: &KeyPrefix) -> Result<u64> {
        let objects = self.list_raw(from.as_str()).await?;
        let count = objects.len() as u64;
        stream::iter(objects)
            .map(|meta| async move {
                let suffix = &meta.key[from.as_str().len()..];
                let target = format!("{}{suffix}", to.as_str());
                self.copy_object(&meta.key, &target, meta.size).await
            })
            .buffer_unordered(CONCURRENCY * 2)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(count)
    }
}

/// An S3 timestamp as a `SystemTime` (`None` before the epoch or out of range).
fn to_system_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(t.secs()).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs, t.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_until_the_cap() {
        let cap = Duration::from_secs(2);
        let mut previous = Duration::ZERO;
        for attempt in 0..5 {
            let delay = backoff_delay(attempt, cap);
            let full = BASE_BACKOFF * 2u32.pow(attempt);
            assert!(
                delay >= full.min(cap) / 2 && delay <= full.min(cap),
                "{attempt}: {delay:?}"
            );
            assert!(delay >= previous, "delays never shrink before the cap");
            previous = delay;
        }
        for attempt in [10, 31, 1000] {
            assert!(backoff_delay(attempt, cap) <= cap, "the cap holds");
        }
    }

    #[test]
    fn throttle_doubles_on_slow_down_and_decays() {
        let throttle = Throttle::default();
        let cap = Duration::from_secs(1);
        throttle.slow_down(cap);
        assert_eq!(throttle.current(), Duration::from_millis(50));
        throttle.slow_down(cap);
        assert_eq!(throttle.current(), Duration::from_millis(100));
        for _ in 0..50 {
            throttle.relax();
        }
        assert_eq!(throttle.current(), Duration::ZERO);
        for _ in 0..20 {
            throttle.slow_down(cap);
        }
        assert_eq!(throttle.current(), cap);
    }
}
