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
    let mut reader = LooseObjectReader::new(key, expected, stored, max_size)?;
    let mut data = Vec::with_capacity(reader.size() as usize);
    reader
        .read_to_end(&mut data)
        .map_err(|err| reader.error(err))?;
    Ok((reader.kind(), data))
}

/// Streams the content of a stored loose object: inflates `stored` as it is read,
/// skips the header, and checks at the end that the content has the size the
/// header states and hashes to `expected`. So a whole object is never held, and a
/// reader that reaches the end (`read` returns 0) has read verified bytes; any
/// mismatch is an `InvalidData` error instead of the end (see [`Self::error`]).
pub struct LooseObjectReader<R: Read> {
    key: String,
    expected: ObjectId,
    kind: Kind,
    size: u64,
    remaining: u64,
    inflater: flate2::read::ZlibDecoder<R>,
    hasher: Sha1,
    /// Set once the end has been checked.
    verified: bool,
}

impl<R: Read> std::fmt::Debug for LooseObjectReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LooseObjectReader")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl<R: Read> LooseObjectReader<R> {
    /// Read the header of the loose bytes `stored` for `expected`; refuses objects
    /// whose header states more than `max_size` bytes.
    pub fn new(key: &str, expected: &oid, stored: R, max_size: u64) -> Result<Self> {
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
        let text = std::str::from_utf8(&head).map_err(|_| corrupt("header is not text".into()))?;
        let (kind, size) = text
            .split_once(' ')
            .ok_or_else(|| corrupt(format!("bad header '{text}'")))?;
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
        let mut hasher = Sha1::new();
        hasher.update(&head);
        hasher.update([0u8]);
        Ok(LooseObjectReader {
            key: key.to_string(),
            expected: expected.to_owned(),
            kind,
            size,
            remaining: size,
            inflater,
            hasher,
            verified: false,
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The content size the header states.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The storage error for an I/O error this reader returned: `Corrupted` for
    /// bytes that are not the object they should be.
    pub fn error(&self, err: std::io::Error) -> StorageError {
        StorageError::Corrupted {
            key: self.key.clone(),
            detail: err.to_string(),
        }
    }

    fn invalid(detail: String) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, detail)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        // Nothing may follow the content.
        let mut extra = [0u8; 1];
        let n = self
            .inflater
            .read(&mut extra)
            .map_err(|e| Self::invalid(format!("cannot inflate: {e}")))?;
        if n != 0 {
            return Err(Self::invalid(format!(
                "header says {} bytes, content has more",
                self.size
            )));
        }
        let actual = ObjectId::from_bytes_or_panic(&self.hasher.clone().finalize());
        if actual != self.expected {
            return Err(Self::invalid(format!("content hashes to {actual}")));
        }
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for LooseObjectReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            if !self.verified {
                self.finish()?;
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self
            .inflater
            .read(&mut buf[..want])
            .map_err(|e| Self::invalid(format!("cannot inflate: {e}")))?;
        if n == 0 && want > 0 {
            return Err(Self::invalid(format!(
                "header says {} bytes, content has {}",
                self.size,
                self.size - self.remaining
            )));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Write `content` (exactly `size` bytes) as a loose object of `kind` to `dest`,
/// deflating and hashing as it streams; returns the object id. Holds no more
/// than a buffer of the content at any time.
pub fn write_loose_file(
    kind: Kind,
    size: u64,
    content: &mut dyn Read,
    dest: &std::path::Path,
) -> Result<ObjectId> {
    let io_err = StorageError::io(format!("writing {}", dest.display()));
    let file = std::fs::File::create(dest)
        .map_err(StorageError::io(format!("creating {}", dest.display())))?;
    let mut enc = flate2::write::ZlibEncoder::new(
        std::io::BufWriter::with_capacity(256 * 1024, file),
        flate2::Compression::default(),
    );
    let head = header(kind, size as usize);
    let mut hasher = Sha1::new();
    hasher.update(head.as_bytes());
    let mut written = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let result = (|| -> std::io::Result<()> {
        enc.write_all(head.as_bytes())?;
        loop {
            let n = content.read(&mut buf)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > size {
                break;
            }
            hasher.update(&buf[..n]);
            enc.write_all(&buf[..n])?;
        }
        enc.finish()?.flush()
    })();
    result.map_err(io_err)?;
    if written != size {
        return Err(StorageError::Other(format!(
            "loose object content has {written}{} bytes, expected {size}",
            if written > size { "+" } else { "" }
        )));
    }
    Ok(ObjectId::from_bytes_or_panic(&hasher.finalize()))
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

/// Store a loose object already written in the loose format at `path` (see
/// [`write_loose_file`]); the backend streams the file.
pub async fn put_loose_file(
    backend: &dyn ObjectStorageBackend,
    repo: &RepoId,
    id: &oid,
    kind: Kind,
    size: u64,
    path: &std::path::Path,
) -> Result<()> {
    let key = ObjectKey::loose(repo, id);
    backend
        .put_file(&key, path, &PutOptions::loose(kind, size))
        .await
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

    /// A repository made by git in a temp dir, for git's own view of loose objects.
    fn git_repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "--bare", "."]);
        dir
    }

    fn git(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Content of several MiB that compresses a little, so the streams span many buffers.
    fn big_content() -> Vec<u8> {
        (0..3u32 << 20)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect()
    }

    #[test]
    fn streamed_reads_of_objects_git_wrote_give_their_content() {
        let repo = git_repo();
        let content = big_content();
        let file = repo.path().join("content");
        std::fs::write(&file, &content).unwrap();
        let id = String::from_utf8(git(repo.path(), &["hash-object", "-w", "content"])).unwrap();
        let id = ObjectId::from_hex(id.trim().as_bytes()).unwrap();
        let hex = id.to_string();
        let stored = std::fs::File::open(repo.path().join(format!(
            "objects/{}/{}",
            &hex[..2],
            &hex[2..]
        )))
        .unwrap();
        let mut reader =
            LooseObjectReader::new("k", &id, std::io::BufReader::new(stored), u64::MAX).unwrap();
        assert_eq!(
            (reader.kind(), reader.size()),
            (Kind::Blob, content.len() as u64)
        );
        // Small reads, as a pack writer's buffer would take them.
        let mut back = Vec::new();
        let mut chunk = [0u8; 7919];
        loop {
            let n = reader.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&chunk[..n]);
        }
        assert!(back == content, "the streamed content is the object's");
    }

    #[test]
    fn streamed_writes_are_loose_objects_git_reads() {
        let repo = git_repo();
        let content = big_content();
        let dest = repo.path().join("written");
        let id =
            write_loose_file(Kind::Blob, content.len() as u64, &mut &content[..], &dest).unwrap();
        assert_eq!(id, loose_object_id(Kind::Blob, &content));
        let hex = id.to_string();
        let dir = repo.path().join(format!("objects/{}", &hex[..2]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::rename(&dest, dir.join(&hex[2..])).unwrap();
        assert_eq!(git(repo.path(), &["cat-file", "-t", &hex]), b"blob\n");
        assert!(
            git(repo.path(), &["cat-file", "blob", &hex]) == content,
            "git reads it back"
        );
        git(repo.path(), &["fsck", "--strict"]);
        // And the in-memory encoder agrees with git on small objects too.
        let small =
            write_loose_file(Kind::Blob, 6, &mut &b"hello\n"[..], &repo.path().join("s")).unwrap();
        assert_eq!(
            small.to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn streamed_writes_refuse_content_of_the_wrong_size() {
        let dir = tempfile::tempdir().unwrap();
        for size in [5u64, 7] {
            let err = write_loose_file(
                Kind::Blob,
                size,
                &mut &b"hello\n"[..],
                &dir.path().join("x"),
            )
            .unwrap_err();
            assert!(err.to_string().contains("expected"), "{err}");
        }
    }

    fn read_all(stored: &[u8], id: &oid) -> Result<Vec<u8>> {
        let mut reader = LooseObjectReader::new("k", id, stored, 1 << 30)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|e| reader.error(e))?;
        Ok(out)
    }

    #[test]
    fn truncated_or_corrupt_loose_bytes_are_errors_never_panics() {
        let content = big_content();
        let id = loose_object_id(Kind::Blob, &content);
        let encoded = encode_loose(Kind::Blob, &content);
        assert!(read_all(&encoded, &id).unwrap() == content);
        for cut in [
            0,
            1,
            2,
            10,
            encoded.len() / 2,
            encoded.len() - 5,
            encoded.len() - 1,
        ] {
            let err = read_all(&encoded[..cut], &id).unwrap_err();
            assert_eq!(err.code(), "OBJECT_CORRUPTED", "cut at {cut}: {err}");
        }
        for at in [0, 1, 3, 40, encoded.len() / 3, encoded.len() - 2] {
            let mut bad = encoded.clone();
            bad[at] ^= 0x55;
            let err = read_all(&bad, &id).unwrap_err();
            assert_eq!(err.code(), "OBJECT_CORRUPTED", "flip at {at}: {err}");
        }
        // Right bytes, wrong name.
        let other = loose_object_id(Kind::Blob, b"other");
        assert_eq!(
            read_all(&encoded, &other).unwrap_err().code(),
            "OBJECT_CORRUPTED"
        );
        // Content past the stated size.
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"blob 3\0abcd").unwrap();
        let err =
            read_all(&enc.finish().unwrap(), &loose_object_id(Kind::Blob, b"abc")).unwrap_err();
        assert_eq!(err.code(), "OBJECT_CORRUPTED");
    }
}
