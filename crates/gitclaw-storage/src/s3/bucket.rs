//! The start-up check of the store: the bucket exists (or is created, when
//! allowed) and the credentials can write, read back and delete in it.
//!
//! It runs once before the server takes requests, so a wrong bucket name, region
//! or key is reported at start-up, with what to change, rather than on the first
//! push.

use aws_sdk_s3::error::ProvideErrorMetadata;
use bytes::Bytes;

use super::{failure::classify, S3Backend};
use crate::{
    backend::PutOptions,
    error::{Result, StorageError},
};

impl S3Backend {
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
}

/// `err` with what the start-up check was doing in front of its detail.
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
