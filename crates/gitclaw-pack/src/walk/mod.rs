//! The object-graph walk of upload-pack.
//!
//! [`plan_shallow`] decides the shallow boundary of a fetch (`deepen`,
//! `deepen-relative`, `deepen-since`, `deepen-not`, unshallow) the way git's
//! upload-pack does; [`enumerate`](fn@enumerate) then lists the objects reachable
//! from the wants and not from the haves, honouring that boundary and the client's
//! own shallow commits. Like git, it excludes the trees of the commits at the edge
//! of what the client has rather than of its whole history, so its cost follows
//! the fetch, not the repository; an object found only deeper in the client's
//! history goes out again unless compaction recorded the commit that brought
//! it ([`ClientHistory`]). [`ok_to_give_up`] is the negotiation's "ready" test.
//!
//! One job per module:
//! - `graph`: reads and memoizes commits, peels tags ([`Graph`]).
//! - `shallow`: the shallow boundary of a fetch ([`plan_shallow`]).
//! - `filter`: partial-clone filters ([`Filter`]).
//! - `enumerate`: the objects a fetch sends ([`enumerate`](fn@enumerate)), from
//!   the commit walk of `commit_walk` and the tree walk of `tree_walk`, past
//!   what the client has at the edge (`edge`).
//! - `history`: what the client's history holds beyond the walk's edge, from
//!   the commits compaction records as bringing each object ([`ClientHistory`]).
//! - `log`: the commits `git log` lists, for the API ([`log`](fn@log)).
//! - `range`: the commits `git log A..B` lists, for compares ([`range`](fn@range)).
//! - `negotiate`: the "ready" test of negotiation ([`ok_to_give_up`]).
//! - `reachability`: whether wants are reachable from ref tips, and tips from
//!   wants ([`unreachable_wants`], [`reaches_all`]).
//!
//! Not here: parsing requests or writing packs.

mod commit_walk;
mod edge;
mod enumerate;
mod filter;
mod graph;
mod history;
mod log;
mod negotiate;
mod range;
mod reachability;
mod shallow;
mod tree_walk;

pub use enumerate::{enumerate, WalkObject, WalkOptions, WalkOutcome};
pub use filter::Filter;
pub use graph::Graph;
pub use history::{introducing_commits, ClientHistory};
pub use log::{log, LogPage, LogRequest};
pub use negotiate::{ok_to_give_up, to_acknowledge};
pub use range::{range, Range};
pub use reachability::{reaches_all, unreachable_wants};
pub use shallow::{plan_shallow, DeepenRequest, ShallowPlan, INFINITE_DEPTH};
pub use tree_walk::name_hash;
pub(crate) use tree_walk::read_tree;
