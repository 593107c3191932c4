//! Git LFS: the batch API, the transfer of object content, and file locks —
//! another service beside upload-pack and receive-pack, on the same auth,
//! metadata and store.
//!
//! Object content lives in the store under `{repo_id}/lfs/…`
//! ([`ObjectKey::lfs`]); a repository *has* an object only once a row records
//! it, and a row is written only after the server made sure the store holds
//! the content with the right size and SHA-256. Where the store can sign
//! requests (S3), the batch answer hands out presigned URLs and the bytes go
//! straight between the client and the bucket; the presigned upload names the
//! SHA-256 as the S3 checksum, and [`verify`] checks the content again before
//! recording it (not every S3-compatible store enforces the checksum). Where it
//! cannot (the filesystem), the URLs are the server's own, and the bytes stream
//! through it ([`transfer`]).
//!
//! - [`batch`]: the batch request and its answer.
//! - [`transfer`]: receiving and serving content through the server, and
//!   checking content a client wrote straight to the store.
//! - [`locks`]: file locks.
//!
//! Not here: HTTP (routes, status codes, headers), who the caller is.

pub mod batch;
pub mod locks;
pub mod transfer;

use gitclaw_storage::{LfsOid, ObjectKey, RepoId, StorageError};

use crate::error::GitError;

/// The largest object a single S3 PUT can store; presigned uploads are single
/// PUTs.
pub const S3_MAX_PUT_BYTES: u64 = 5 << 30;

/// Why an LFS request failed.
#[derive(Debug, thiserror::Error)]
pub enum LfsError {
    /// The request is malformed or names something invalid (answered 422).
    #[error("{0}")]
    Invalid(String),
    /// The request is larger than the server accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// No such object or lock (404).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this to this lock (403).
    #[error("{0}")]
    Forbidden(String),
    /// The batch names a hash algorithm the server does not use (409).
    #[error("{0}")]
    Unsupported(String),
    /// The store, the database or the disk failed.
    #[error(transparent)]
    Server(#[from] GitError),
}

impl From<StorageError> for LfsError {
    fn from(err: StorageError) -> Self {
        LfsError::Server(err.into())
    }
}

impl From<gitclaw_metadata::Error> for LfsError {
    fn from(err: gitclaw_metadata::Error) -> Self {
        LfsError::Server(err.into())
    }
}

/// The most bytes an LFS pointer file takes (git-lfs's own bound).
pub const MAX_POINTER_BYTES: u64 = 1024;

/// The object an LFS pointer file names (its SHA-256, lowercase hex) and the
/// size it gives; `None` when `text` is not a pointer file
/// (<https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md>).
pub fn pointer(text: &[u8]) -> Option<(String, u64)> {
    if text.len() as u64 > MAX_POINTER_BYTES || !text.ends_with(b"\n") {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    let version = lines.next()?.strip_prefix("version ")?;
    let known = [
        "https://git-lfs.github.com/spec/v1",
        "https://hawser.github.com/spec/v1",
    ];
    if !known.contains(&version) {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        let (key, value) = line.split_once(' ')?;
        match key {
            "oid" => {
                let hex = value.strip_prefix("sha256:")?;
                let valid = hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                oid = valid.then(|| hex.to_string());
            }
            "size" => size = value.parse::<u64>().ok(),
            _ if key.starts_with("ext-") => {}
            _ => return None,
        }
    }
    Some((oid?, size?))
}

/// The message for an oid that is not one.
pub fn bad_oid(oid: &str) -> String {
    let shown: String = oid.chars().take(80).collect();
    format!("invalid oid {shown:?}: an LFS oid is a SHA-256, 64 lowercase hex digits")
}

/// Parse an oid from a request.
pub fn parse_oid(oid: &str) -> Result<LfsOid, LfsError> {
    LfsOid::parse(oid).ok_or_else(|| LfsError::Invalid(bad_oid(oid)))
}

/// The store key of a repository's LFS object.
pub fn object_key(repo_id: &str, oid: &LfsOid) -> Result<ObjectKey, LfsError> {
    Ok(ObjectKey::lfs(&RepoId::new(repo_id)?, oid))
}

/// Whether an upload of `size` bytes is refused, and why: over the configured
/// limit, or over what one S3 PUT can store when uploads are presigned.
pub fn size_refusal(size: u64, max: u64, presigned: bool) -> Option<String> {
    if size > max {
        return Some(format!(
            "object is {size} bytes; this server accepts LFS objects of at most {max} bytes \
             (GITCLAW_LFS_MAX_OBJECT_BYTES)"
        ));
    }
    if presigned && size > S3_MAX_PUT_BYTES {
        return Some(format!(
            "object is {size} bytes; objects above 5 GiB ({S3_MAX_PUT_BYTES} bytes), the \
             largest single S3 upload, cannot be stored"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_over_the_limit_or_a_single_put_are_refused() {
        assert_eq!(size_refusal(10, 10, true), None);
        assert!(size_refusal(11, 10, false)
            .unwrap()
            .contains("GITCLAW_LFS_MAX_OBJECT_BYTES"));
        let huge = S3_MAX_PUT_BYTES + 1;
        assert_eq!(size_refusal(huge, u64::MAX, false), None);
        assert!(size_refusal(huge, u64::MAX, true)
            .unwrap()
            .contains("5 GiB"));
    }

    #[test]
    fn oids_are_checked_and_bad_ones_named_briefly() {
        assert!(parse_oid(&"a".repeat(64)).is_ok());
        let err = parse_oid(&"Z".repeat(10_000)).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn pointer_files_are_read_as_git_lfs_writes_them() {
        let oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
        let plain =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 12345\n");
        assert_eq!(pointer(plain.as_bytes()), Some((oid.to_string(), 12345)));
        let with_ext = format!(
            "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:{oid}\noid sha256:{oid}\nsize 0\n"
        );
        assert_eq!(pointer(with_ext.as_bytes()), Some((oid.to_string(), 0)));
        for not in [
            plain.trim_end().to_string(),
            plain.replace("v1", "v2"),
            plain.replace("sha256:", "sha1:"),
            plain.replace("size 12345", "size x"),
            plain.replace(oid, &oid.to_uppercase()),
            plain.replace("size 12345\n", ""),
            format!("{plain}extra line\n"),
            "hello\n".to_string(),
        ] {
            assert_eq!(pointer(not.as_bytes()), None, "{not:?}");
        }
        let long = format!("{plain}{}", "x".repeat(1024));
        assert_eq!(pointer(long.as_bytes()), None);
    }
}
