//! The services behind the routes and the command line: each module
//! orchestrates one git or API operation on top of the protocol, pack, storage
//! and metadata crates, and knows nothing of HTTP.
//!
//! - [`advertise`]: refs and capabilities (`info/refs`, `ls-refs`).
//! - [`fetch`]: upload-pack — negotiation, choosing the pack's source, writing it.
//! - [`push`]: receive-pack — spooling, checking, storing, committing a push.
//! - [`lfs`]: Git LFS — the batch API, object content, file locks.
//! - [`repos`], [`tokens`]: repositories and access tokens (REST API and CLI).
//! - [`gc`], [`sweep`], [`claims`]: compaction, store hygiene, and the leases
//!   that keep a key being written from being swept.
//! - [`objects`], [`pack_cache`], [`response_cache`]: a repository's objects
//!   for the pack engine, opened packs, and generated clone packs.

pub mod advertise;
pub mod archive;
pub mod bundles;
pub mod claims;
pub mod commits;
pub mod compare;
pub mod fetch;
pub mod files;
pub mod gc;
pub mod hooks;
pub mod lfs;
pub mod migrate;
pub mod objects;
pub mod pack_cache;
pub mod protected;
pub mod push;
pub mod repos;
pub mod response_cache;
pub mod revision;
pub mod shared_cache;
pub mod sweep;
pub mod tokens;
