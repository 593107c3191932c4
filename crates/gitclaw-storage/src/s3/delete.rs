//! Deleting every key under a prefix: DeleteObjects in batches of 1000.
//!
//! DeleteObjects can succeed as a call yet fail for some of its keys; those keys
//! are sent again after the retry policy's backoff, up to `max_retries` times,
//! and the error names the first key that still could not be deleted.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::{failure::classify, S3Backend};
use crate::{
    error::{Result, StorageError},
    keys::KeyPrefix,
};

/// DeleteObjects takes at most this many keys.
const DELETE_BATCH: usize = 1000;

impl S3Backend {
    /// Delete every key under `prefix`; returns how many were deleted.
    pub(super) async fn delete_all(&self, prefix: &KeyPrefix) -> Result<u64> {
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
                if attempt >= self.retry.max_retries() {
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
                self.retry.back_off(attempt).await;
                attempt += 1;
                pending = failed.into_iter().map(|(key, _)| key).collect();
            }
        }
        Ok(deleted)
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
