//! Receiving a push's pack: copied to a size-capped file in the scratch space
//! before any work starts, so a slow client holds no push slot; a refused pack
//! is drained for a while so the client can read why.

use std::{path::Path, time::Duration};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::PushBody;
use crate::error::GitError;

/// A compressed push body may inflate to at most this many times the bytes
/// received (plus [`INFLATE_ALLOWANCE`]). Packs are zlib streams already, so a
/// real pack gzips to about its own size; a body that inflates a hundredfold
/// is a compression bomb, refused before it fills the disk.
const MAX_INFLATE_RATIO: u64 = 64;
const INFLATE_ALLOWANCE: u64 = 1 << 20;

/// Copy the pack (already-read bytes, then the rest of the body) into `path`,
/// capped at `limit` bytes as they inflate.
pub async fn spool_pack(
    leftover: Vec<u8>,
    body: &mut dyn PushBody,
    path: &Path,
    limit: u64,
) -> Result<u64, GitError> {
    let io = GitError::io;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(io("creating the spool file"))?;
    let mut total = leftover.len() as u64;
    if total > limit {
        refuse_rest(body, limit).await;
        return Err(too_large(limit));
    }
    file.write_all(&leftover)
        .await
        .map_err(io("spooling the pack"))?;
    // A small pack arrives whole with the commands; a big one in the loop below.
    if total > 0 {
        gitclaw_metadata::crash_point("push:receiving");
    }
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(|err| GitError::BadRequest(format!("reading the pack: {err}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            refuse_rest(body, limit).await;
            return Err(too_large(limit));
        }
        if let Some(wire) = body.compressed_bytes() {
            if total > wire.saturating_mul(MAX_INFLATE_RATIO) + INFLATE_ALLOWANCE {
                return Err(GitError::TooLarge(format!(
                    "the compressed request inflates more than {MAX_INFLATE_RATIO} times \
                     ({wire} bytes became {total}): refused"
                )));
            }
        }
        file.write_all(&buf[..n])
            .await
            .map_err(io("spooling the pack"))?;
        gitclaw_metadata::crash_point("push:receiving");
    }
    file.flush().await.map_err(io("spooling the pack"))?;
    Ok(total)
}

/// Before refusing an oversized pack: drain a plain body so the client reads
/// the reason ([`discard_rest`]); a compressed one is not inflated any further
/// (git never compresses a push), the connection just closes after the answer.
async fn refuse_rest(body: &mut dyn PushBody, limit: u64) {
    if body.compressed_bytes().is_none() {
        discard_rest(body, limit).await;
    }
}

/// How long the rest of a refused pack is read and dropped.
const DISCARD_SECS: u64 = 30;

/// Read and drop what is left of a refused pack — at most as much again as the
/// limit (and 64 MiB at least), for at most [`DISCARD_SECS`] — so a client that
/// sends its whole pack before reading the answer gets to read why it was
/// refused rather than a broken pipe. Past either bound the connection closes.
async fn discard_rest(body: &mut dyn PushBody, limit: u64) {
    let mut left = limit.max(64 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(DISCARD_SECS), async {
        while left > 0 {
            match body.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n as u64),
            }
        }
    })
    .await;
}

fn too_large(limit: u64) -> GitError {
    GitError::TooLarge(format!(
        "pack exceeds the maximum allowed size of {limit} bytes"
    ))
}
