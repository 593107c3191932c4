//! Git's loose object format: zlib of `"{type} {size}\0" + content`, named by the
//! SHA-1 of the uncompressed bytes. Reads verify the hash: bytes that no longer
//! match their id are `Corrupted` and never served.

use std::io::{Read, Write};

use bytes::Bytes;
use gix_hash::{oid, ObjectId};
use gix_object::Kind;
use sha1::{Digest, Sha1};

use crate::{
    backend::{ObjectStorageBackend, PutOptions},
    error::{Result, StorageError},
    keys::{ObjectKey, RepoId},
};

fn header(kind: Kind, size: usize) -> String {
    format!("{kind} {size}\0")
}

/// The object id of `data` as an object of `kind`.
pub fn loose_object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut hasher = Sha1::new();
    hasher.update(header(kind, data.len()).as_bytes());
    hasher.update(data);
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

/// Encode an object in the loose format.
pub fn encode_loose(kind: Kind, data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(header(kind, data.len()).as_bytes());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Decode and verify loose bytes stored for `expected`. Never allocates more than
/// `max_size` (or the size the header states, if smaller) for the content.
pub fn decode_loose(
    key: &str,
    expected: &oid,
    stored: &[u8],
    max_size: u64,
) -> Result<(Kind, Vec<u8>)> {
    let corrupt = |detail: String| StorageError::Corrupted {
        key: key.to_string(),
        detail,
    };
    let mut inflater = flate2::read::ZlibDecoder::new(stored);
    // The header is at most "commit " + 20 digits + NUL.
    let mut head = Vec::with_capacity(32);
    let mut byte = [0u8; 1];
    loop {
        let n = inflater
            .read(&mut byte)
            .map_err(|e| corrupt(format!("not a zlib stream: {e}")))?;
        if n == 0 {
            return Err(corrupt("truncated header".into()));
        }
        if byte[0] == 0 {
            break;
        }
        head.push(byte[0]);
        if head.len() > 32 {
            return Err(corrupt("header too long".into()));
        }
    }
    let head = std::str::from_utf8(&head).map_err(|_| corrupt("header is not text".into()))?;
    let (kind, size) = head
        .split_once(' ')
        .ok_or_else(|| corrupt(format!("bad header '{head}'")))?;
    let kind = Kind::from_bytes(kind.as_bytes())
        .map_err(|_| corrupt(format!("unknown object type '{kind}'")))?;
    let size: u64 = size
        .parse()
        .map_err(|_| corrupt(format!("bad size '{size}'")))?;
    if size > max_size {
        return Err(corrupt(format!(
            "object of {size} bytes exceeds the limit of {max_size}"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    inflater
        .by_ref()
        .take(size + 1)
        .read_to_end(&mut data)
        .map_err(|e| corrupt(format!("cannot inflate: {e}")))?;
    if data.len() as u64 != size {
        return Err(corrupt(format!(
            "header says {size} bytes, content has {}",
            data.len()
        )));
    }
    let actual = loose_object_id(kind, &data);
    if actual != expected {
        return Err(corrupt(format!("content hashes to {actual}")));
    }
    Ok((kind, data))
}

/// The largest loose object a read will inflate.
pub const MAX_LOOSE_OBJECT_BYTES: u64 = 4 << 30;

/// Store an object as a loose object of `repo`; returns its id.
pub async fn put_loose_object(
    backend: &dyn ObjectStorageBackend,
    repo: &RepoId,
    kind: Kind,
    data: &[u8],
) -> Result<ObjectId> {
    let id = loose_object_id(kind, data);
    let key = ObjectKey::loose(repo, &id);
    let encoded = encode_loose(kind, data);
    backend
        .put(
            &key,
            Bytes::from(encoded),
            &PutOptions::loose(kind, data.len() as u64),
        )
        .await?;
    Ok(id)
}

/// Read and verify a loose object of `repo`.
pub async fn get_loose_object(
    backend: &dyn ObjectStorageBackend,
    repo: &RepoId,
    id: &oid,
) -> Result<(Kind, Vec<u8>)> {
    let key = ObjectKey::loose(repo, id);
    let stored = backend.get(&key).await?;
    let key_text = key.as_str().to_string();
    let expected = id.to_owned();
    // Inflating and hashing is CPU work: keep it off the async workers for big objects.
    if stored.len() > 256 * 1024 {
        tokio::task::spawn_blocking(move || {
            decode_loose(&key_text, &expected, &stored, MAX_LOOSE_OBJECT_BYTES)
        })
        .await
        .map_err(|e| StorageError::Other(format!("decode task failed: {e}")))?
    } else {
        decode_loose(&key_text, &expected, &stored, MAX_LOOSE_OBJECT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_git_hash_object() {
        // `echo hello | git hash-object --stdin`
        assert_eq!(
            loose_object_id(Kind::Blob, b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        let encoded = encode_loose(Kind::Blob, b"hello\n");
        let id = loose_object_id(Kind::Blob, b"hello\n");
        assert_eq!(
            decode_loose("k", &id, &encoded, 100).unwrap(),
            (Kind::Blob, b"hello\n".to_vec())
        );
    }

    #[test]
    fn lying_headers_are_corruption_not_allocation() {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"blob 99999999999999\0abc").unwrap();
        let bytes = enc.finish().unwrap();
        let id = loose_object_id(Kind::Blob, b"abc");
        let err = decode_loose("k", &id, &bytes, 1 << 20).unwrap_err();
        assert_eq!(err.code(), "OBJECT_CORRUPTED");
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"blob 10\0abc").unwrap();
        let err = decode_loose("k", &id, &enc.finish().unwrap(), 1 << 20).unwrap_err();
        assert_eq!(err.code(), "OBJECT_CORRUPTED");
    }
}
