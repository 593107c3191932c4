//! Object storage for GitClaw: the [`ObjectStorageBackend`] trait, the key layout
//! (every key under its repository's prefix), Git's loose object format, the
//! filesystem and S3 backends, and a conformance suite every backend runs.
//!
//! Not here: Git semantics beyond keys and hashes (packs are opaque bytes), and
//! which objects a repository has (the metadata database knows that).

mod backend;
pub mod conformance;
mod error;
mod fs;
mod keys;
mod loose;
mod observe;
mod s3;

pub use backend::{ObjectMeta, ObjectStorageBackend, PresignedRequest, PutOptions};
pub use error::{Result, StorageError};
pub use fs::FilesystemBackend;
pub use keys::{KeyKind, KeyPrefix, LfsOid, ObjectKey, RepoId};
pub use loose::{
    decode_loose, encode_loose, get_loose_object, loose_object_id, put_loose_file,
    put_loose_object, write_loose_file, LooseObjectReader, MAX_LOOSE_OBJECT_BYTES,
};
pub use observe::{Observed, StoreObserver, Transfer};
pub use s3::{backoff_delay, S3Backend, S3Settings, MULTIPART_THRESHOLD};
