//! The pack engine: everything GitClaw does with Git packs, as blocking code.
//!
//! - [`odb`]: a read view over one repository's objects — its stored packs (opened
//!   from local `.pack`/`.idx` files) plus a [`odb::LooseSource`] the caller supplies.
//! - [`ingest`]: index a pushed pack, complete it when thin, hash, parse and check
//!   the connectivity of every object before anything is stored (in one
//!   traversal of its deltas, `resolve`; packs holding big objects are indexed
//!   by `stream_index`, which never holds them whole).
//! - [`fsck`]: git's fsck checks on one object (tree entries a checkout must not
//!   write, and at the strict level modes, order and commit/tag headers).
//! - [`walk`]: the object-graph walk of upload-pack — shallow boundaries, the set of
//!   objects reachable from the wants and not from the haves, negotiation helpers.
//! - [`writer`]: streams a pack for a set of objects, copying stored entries verbatim
//!   (deltas included when their base goes out too) and deflating the rest.
//! - [`repack`]: compaction, with its [`commit_graph`] and [`tip_entries`].
//! - [`verify`]: a repository's stored objects checked whole, as `git fsck` does.
//! - [`archive`] and [`files`]: a revision's files (tar and zip archives, one
//!   file, tree listings and diffs).
//!
//! Not here: HTTP, SQL, object storage. Callers run this code on blocking threads
//! (`spawn_blocking`) and hand it local files and a `std::io::Write` sink.

pub mod archive;
pub mod civil;
pub mod commit_graph;
pub mod delta;
pub mod describe;
pub mod entry;
pub mod files;
pub mod fsck;
mod gate;
mod id_table;
pub mod ingest;
mod kinds;
pub mod odb;
pub mod renames;
pub mod repack;
mod resolve;
mod stream_index;
pub mod tip_entries;
pub mod verify;
pub mod walk;
pub mod writer;

pub use gix_hash::{oid, ObjectId};

/// Objects larger than this are big (git's `core.bigFileThreshold`, which git
/// sets at 512 MiB): they are streamed wherever they are copied — served from a
/// loose object, stored loose from a push — never held whole, and never take part
/// in a delta search. Low enough that a request's memory does not grow with the
/// size of the objects it moves, high enough that source files and most binaries
/// still get deltas.
pub const BIG_OBJECT_BYTES: u64 = 16 << 20;
pub use gix_object::Kind;

/// Errors of the pack engine, split by whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The client sent a pack that is malformed, truncated or inconsistent.
    #[error("invalid pack: {0}")]
    InvalidPack(String),
    /// A fetch asks for what cannot be answered (e.g. a shallow boundary
    /// that selects no commit); the words are git's.
    #[error("{0}")]
    InvalidRequest(String),
    /// The pack holds each of these objects more than once, as `git
    /// index-pack --strict` refuses too: an index naming one id at two
    /// offsets is ambiguous. Never empty.
    #[error("invalid pack: the same object {} appears twice in the pack", first_of(.0))]
    DuplicateObjects(Vec<ObjectId>),
    /// An object in the pack does not parse as its type says.
    #[error("object {oid} is malformed: {detail}")]
    MalformedObject { oid: ObjectId, detail: String },
    /// An object fails one of git's fsck checks (see [`fsck`]).
    #[error(transparent)]
    Fsck(#[from] fsck::FsckError),
    /// An entry of the pack makes an object (whole, or as a delta's result)
    /// larger than the caller accepts; found before anything of its size is
    /// allocated.
    #[error(
        "the pack's entry at byte {offset} is an object of {size} bytes; \
         this server accepts objects of at most {limit} bytes"
    )]
    ObjectTooLarge { offset: u64, size: u64, limit: u64 },
    /// An object needed to complete the history is neither sent nor stored.
    #[error("missing necessary object {0}")]
    MissingObject(ObjectId),
    /// Stored data does not match what its index promises.
    #[error("stored pack data is corrupt: {0}")]
    Corrupt(String),
    /// Reading loose objects from the object store failed.
    #[error("object store: {0}")]
    Store(String),
    /// The object store's own error, kept whole so a caller can tell an
    /// outage (worth a retry) from a missing or corrupt object: the server
    /// downcasts the source to its storage error type.
    #[error("object store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A local file could not be read or written.
    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

impl PackError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PackError {
        let context = context.into();
        move |source| PackError::Io { context, source }
    }

    /// True when the failure lies with the client's input rather than the server.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            PackError::InvalidPack(_)
                | PackError::InvalidRequest(_)
                | PackError::DuplicateObjects(_)
                | PackError::MalformedObject { .. }
                | PackError::MissingObject(_)
                | PackError::Fsck(_)
                | PackError::ObjectTooLarge { .. }
        )
    }
}

pub type Result<T, E = PackError> = std::result::Result<T, E>;

/// The first of `ids`, as text (for [`PackError::DuplicateObjects`]).
fn first_of(ids: &[ObjectId]) -> String {
    ids.first().map(ToString::to_string).unwrap_or_default()
}
