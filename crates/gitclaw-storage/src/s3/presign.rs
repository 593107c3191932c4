//! Presigned requests: a GET or a PUT of one object that a client sends straight
//! to the bucket, signed with the backend's credentials for a short while.
//!
//! A presigned PUT carries the content's SHA-256 as `x-amz-checksum-sha256`
//! and its length, both covered by the signature, so the client must send them
//! as given and a store that checks the checksum refuses other bytes. Nothing
//! is sent to the store here: signing is local.

use std::time::Duration;

use aws_sdk_s3::{presigning::PresigningConfig, types::ChecksumMode};

use super::{failure::classify, S3Backend};
use crate::{
    backend::PresignedRequest,
    error::{Result, StorageError},
    keys::LfsOid,
};

/// The longest validity S3 allows a presigned request (SigV4: one week).
const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

fn presigning(key: &str, expires_in: Duration) -> Result<PresigningConfig> {
    PresigningConfig::expires_in(expires_in.clamp(Duration::from_secs(1), MAX_EXPIRY))
        .map_err(|err| StorageError::Other(format!("presigning {key}: {err}")))
}

fn request(presigned: aws_sdk_s3::presigning::PresignedRequest) -> PresignedRequest {
    PresignedRequest {
        method: presigned.method().to_string(),
        url: presigned.uri().to_string(),
        headers: presigned
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    }
}

impl S3Backend {
    pub(super) async fn presign_get_raw(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest> {
        let presigned = self
            .client
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .presigned(presigning(key, expires_in)?)
            .await
            .map_err(|err| classify("GetObject", key, err).error)?;
        Ok(request(presigned))
    }

    pub(super) async fn presign_put_raw(
        &self,
        key: &str,
        sha256: &LfsOid,
        size: u64,
        expires_in: Duration,
    ) -> Result<PresignedRequest> {
        let length = i64::try_from(size)
            .map_err(|_| StorageError::Other(format!("{key}: size {size} is out of range")))?;
        let presigned = self
            .client
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_length(length)
            .checksum_sha256(aws_smithy_types::base64::encode(sha256.digest()))
            .presigned(presigning(key, expires_in)?)
            .await
            .map_err(|err| classify("PutObject", key, err).error)?;
        Ok(request(presigned))
    }

    /// The object's full-content SHA-256 as the store recorded it at upload, if
    /// it recorded one.
    pub(super) async fn stored_sha256_raw(&self, key: &str) -> Result<Option<LfsOid>> {
        self.call("HeadObject", key, || async {
            let out = self
                .client
                .head_object()
                .bucket(self.bucket())
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .map_err(|e| classify("HeadObject", key, e))?;
            // A multipart object's checksum is a checksum of checksums
            // (`…-N`): not the content's, so not an answer.
            Ok(out
                .checksum_sha256()
                .and_then(|text| aws_smithy_types::base64::decode(text).ok())
                .and_then(|raw| <[u8; 32]>::try_from(raw.as_slice()).ok())
                .map(LfsOid::from_digest))
        })
        .await
    }
}
