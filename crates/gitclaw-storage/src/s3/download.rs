//! Whole objects downloaded into files.
//!
//! One GET streams an object into a temp file; when the caller knows the
//! object's length and it is more than one part, ranged GETs of its parts run
//! side by side, each written at its own offset, as S3's guidelines advise: one
//! stream from S3 delivers well below what the connection carries, and on a
//! fresh instance the first request of a repository waits for its pack index
//! (28 bytes an object: 28 MB for a million objects). Even Garage on loopback,
//! with nothing else asking, served a 5.6 MB object in 47 ms as one GET and in
//! 29 ms as four parts (median of 15). The length is only trusted
//! after the store confirms it: every part's `Content-Range` names the
//! object's length and every part's ETag must be the same, or the parts are
//! dropped and the object comes down as one GET.

use std::{ops::Range, path::Path};

use aws_sdk_s3::error::SdkError;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{classify, Failure, S3Backend, CONCURRENCY};
use crate::error::{Result, StorageError};

/// Bytes a one-GET download collects before each write to its file.
const WRITE_BYTES: usize = 1 << 20;

/// Bytes each part collects before a write: the parts in flight together hold
/// what one GET's buffer holds.
const PART_WRITE_BYTES: usize = WRITE_BYTES / CONCURRENCY;

/// The smallest part (S3's guidelines suggest 8–16 MB): an object of at most
/// this comes down in one GET. A stream of a few MB is not what limits a
/// download, and more requests at once cost a busy store more than they save:
/// on a 2-core machine with Garage on loopback, a fresh instance's first fetch
/// came no sooner with its 5.6 MB index in parts of 1 or 4 MiB, and a
/// `tree:0` clone at 47k objects 4–6 ms later with its 5.3 MB pack in parts
/// (median of 9 interleaved), the pack's ranged reads going on beside them.
pub(super) const PART_MIN_BYTES: u64 = 8 << 20;

/// The largest part, so a retried part repeats little and a large object
/// keeps every connection busy.
const PART_MAX_BYTES: u64 = 16 << 20;

/// The parts of an object of `len` bytes: one per connection in flight while
/// that keeps them between [`PART_MIN_BYTES`] and [`PART_MAX_BYTES`].
pub(super) fn parts(len: u64) -> Vec<Range<u64>> {
    let part = len
        .div_ceil(CONCURRENCY as u64)
        .clamp(PART_MIN_BYTES, PART_MAX_BYTES);
    (0..len)
        .step_by(part as usize)
        .map(|start| start..(start + part).min(len))
        .collect()
}

/// What the store said of the object while sending a part.
struct PartAnswer {
    /// Its length, from `Content-Range`; `None` when the range began past its end.
    len: Option<u64>,
    etag: Option<String>,
}

impl S3Backend {
    /// Download `key` into `dest` (replaced atomically); `len`, when the caller
    /// knows it, lets a large object come down in parts side by side.
    pub(super) async fn download(&self, key: &str, dest: &Path, len: Option<u64>) -> Result<u64> {
        let dir = dest.parent().unwrap_or_else(|| Path::new("."));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(StorageError::io(format!("creating {}", dir.display())))?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(StorageError::io(format!(
            "creating a file in {}",
            dir.display()
        )))?;
        let size = match len.filter(|len| *len > PART_MIN_BYTES) {
            Some(len) if self.download_parts(key, tmp.path(), len).await? => len,
            Some(len) => {
                tracing::warn!(
                    key,
                    expected = len,
                    "the object is not the length its record gives, or changed while \
                     downloading; downloading it whole instead"
                );
                self.download_whole(key, tmp.path()).await?
            }
            None => self.download_whole(key, tmp.path()).await?,
        };
        tmp.persist(dest).map_err(|err| StorageError::Io {
            context: format!("moving the download to {}", dest.display()),
            source: err.error,
        })?;
        Ok(size)
    }

    /// One GET into `path` (rewritten from the start on each attempt).
    async fn download_whole(&self, key: &str, path: &Path) -> Result<u64> {
        self.call("GetObject", key, || async {
            let out = self
                .client
                .get_object()
                .bucket(self.bucket())
                .key(key)
                .send()
                .await
                .map_err(|e| classify("GetObject", key, e))?;
            let expected = out.content_length();
            let size = write_body(key, out.body, path, 0..u64::MAX, WRITE_BYTES).await?;
            match expected {
                Some(expected) if expected >= 0 && expected as u64 != size => Err(
                    Failure::transfer(key, format!("got {size} of {expected} bytes")),
                ),
                _ => Ok(size),
            }
        })
        .await
    }

    /// The parts of an object of `len` bytes into `path`, side by side; false
    /// when the store's answers show the object is not `len` bytes or changed
    /// between parts (the file then holds nothing to keep).
    async fn download_parts(&self, key: &str, path: &Path, len: u64) -> Result<bool> {
        let answers: Vec<PartAnswer> = futures_util::stream::iter(parts(len))
            .map(|range| self.download_part(key, path, range, len))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let first_etag = answers.first().and_then(|a| a.etag.as_deref());
        Ok(answers
            .iter()
            .all(|a| a.len == Some(len) && a.etag.as_deref() == first_etag))
    }

    /// One ranged GET of an object of `len` bytes, written at its offset in `path`.
    async fn download_part(
        &self,
        key: &str,
        path: &Path,
        range: Range<u64>,
        len: u64,
    ) -> Result<PartAnswer> {
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        self.call("GetObjectPart", key, || async {
            let sent = self
                .client
                .get_object()
                .bucket(self.bucket())
                .key(key)
                .range(&header)
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                // The range begins past the object's end: it is shorter than
                // its record says.
                Err(SdkError::ServiceError(err)) if err.raw().status().as_u16() == 416 => {
                    return Ok(PartAnswer {
                        len: None,
                        etag: None,
                    })
                }
                Err(err) => return Err(classify("GetObject", key, err)),
            };
            let answer = PartAnswer {
                len: out.content_range().and_then(object_len),
                etag: out.e_tag().map(str::to_string),
            };
            if answer.len != Some(len) {
                // Not the object the record describes (or a store that
                // ignores ranges): nothing of it is written; the caller
                // downloads it whole.
                return Ok(answer);
            }
            let size = write_body(key, out.body, path, range.clone(), PART_WRITE_BYTES).await?;
            let wanted = range.end - range.start;
            if size != wanted {
                return Err(Failure::transfer(
                    key,
                    format!("got {size} of {wanted} bytes"),
                ));
            }
            Ok(answer)
        })
        .await
    }
}

/// `body` written into `path` from `at.start`; the file is emptied first when
/// the body is the whole object (`at` running to `u64::MAX`). Written through
/// a buffer of `buffer` bytes: each write of a tokio file is a trip to the
/// blocking pool, and a body comes in small chunks. Returns the bytes written.
async fn write_body(
    key: &str,
    body: aws_sdk_s3::primitives::ByteStream,
    path: &Path,
    at: Range<u64>,
    buffer: usize,
) -> std::result::Result<u64, Failure> {
    let io = |e| Failure::local_io(format!("writing {}", path.display()), e);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .truncate(at.end == u64::MAX)
        .open(path)
        .await
        .map_err(io)?;
    if at.start > 0 {
        file.seek(std::io::SeekFrom::Start(at.start))
            .await
            .map_err(io)?;
    }
    let mut file = tokio::io::BufWriter::with_capacity(buffer, file);
    let size = tokio::io::copy(&mut body.into_async_read(), &mut file)
        .await
        .map_err(|e| Failure::transfer(key, e))?;
    file.flush().await.map_err(io)?;
    Ok(size)
}

/// The object's length in a `Content-Range` answer (`bytes 0-99/1234`).
fn object_len(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_once_in_order() {
        for len in [
            PART_MIN_BYTES + 1,
            5_600_000,
            4 * PART_MIN_BYTES,
            4 * PART_MIN_BYTES + 1,
            64 * PART_MAX_BYTES - 3,
        ] {
            let parts = parts(len);
            assert_eq!(parts.first().map(|p| p.start), Some(0), "{len}");
            assert_eq!(parts.last().map(|p| p.end), Some(len), "{len}");
            assert!(parts.windows(2).all(|w| w[0].end == w[1].start), "{len}");
            let sizes = parts.iter().map(|p| p.end - p.start);
            assert!(sizes.clone().all(|s| s <= PART_MAX_BYTES), "{len}");
            // Every part but the last is at least the smallest.
            assert!(sizes.rev().skip(1).all(|s| s >= PART_MIN_BYTES), "{len}");
        }
        // Tens of MB come down over every connection in flight.
        assert_eq!(
            parts(CONCURRENCY as u64 * 2 * PART_MIN_BYTES).len(),
            CONCURRENCY
        );
        assert_eq!(parts(2 * PART_MIN_BYTES).len(), 2);
    }

    #[test]
    fn content_range_gives_the_object_length() {
        assert_eq!(object_len("bytes 0-99/1234"), Some(1234));
        assert_eq!(object_len("bytes 0-99/*"), None);
        assert_eq!(object_len("nonsense"), None);
    }
}
