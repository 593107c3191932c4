//! Server-side copies: every key under one prefix to the same suffix under another.
//!
//! The bytes never pass through GitClaw. CopyObject copies at most 5 GiB, so a
//! larger object is copied as a multipart upload of `UploadPartCopy` ranges,
//! carrying over its content type and metadata like CopyObject does.

use aws_sdk_s3::types::CompletedPart;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{failure::classify, S3Backend, CONCURRENCY};
use crate::{backend::PutOptions, error::Result, keys::KeyPrefix};

/// CopyObject copies at most 5 GiB; larger objects are copied in parts.
const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
const COPY_PART_SIZE: u64 = 1024 * 1024 * 1024;

impl S3Backend {
    /// Copy every key under `from` to the same suffix under `to`; returns how many.
    pub(super) async fn copy_all(&self, from: &KeyPrefix, to: &KeyPrefix) -> Result<u64> {
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
}
