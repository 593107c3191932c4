//! Uploads: one PutObject up to [`MULTIPART_THRESHOLD`], a multipart upload above.
//!
//! A multipart upload reads each part from the file (or slices it from the
//! buffer) when that part is sent, and again on each retry of it, so a pack is
//! never held whole in memory. An upload that fails is aborted, so its parts do
//! not linger in the bucket (best effort: what a failed abort leaves, the
//! bucket's lifecycle rules reclaim).

use std::path::Path;

use aws_sdk_s3::{
    error::DisplayErrorContext,
    primitives::{ByteStream, Length},
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{
    failure::{classify, Failure},
    S3Backend, CONCURRENCY,
};
use crate::{
    backend::PutOptions,
    error::{Result, StorageError},
};

/// Size of each uploaded part (S3 allows at most 10,000 parts; larger objects get larger parts).
const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Objects larger than this go up by multipart upload; smaller ones in one
/// PutObject, streamed from their file (a failed attempt resends at most
/// this much; a multipart upload of a few parts is several requests where one
/// does).
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;

/// Where the bytes of an upload come from.
pub(super) enum PartSource<'a> {
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

/// User metadata as the SDK wants it, `None` when there is none.
fn metadata_map(opts: &PutOptions) -> Option<std::collections::HashMap<String, String>> {
    (!opts.metadata.is_empty()).then(|| opts.metadata.iter().cloned().collect())
}

impl S3Backend {
    pub(super) async fn put_raw(&self, key: &str, data: Bytes, opts: &PutOptions) -> Result<()> {
        self.put_source(key, &PartSource::Memory(data), opts).await
    }

    /// Upload `source` as `key`: one PutObject, or a multipart upload above
    /// [`MULTIPART_THRESHOLD`].
    pub(super) async fn put_source(
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
    pub(super) async fn create_upload(&self, key: &str, opts: &PutOptions) -> Result<String> {
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
                Failure::from(StorageError::UploadFailed {
                    key: key.to_string(),
                    detail: "the store returned no upload id".into(),
                })
            })
        })
        .await
    }

    /// Join the uploaded parts into the object.
    pub(super) async fn complete_upload(
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
    pub(super) async fn abort_upload(&self, key: &str, upload_id: &str) {
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
}
