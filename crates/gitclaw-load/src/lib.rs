//! `gitclaw-load`: a load generator for any Git smart-HTTP server (GitClaw,
//! or C git's `git http-backend`), speaking the wire protocol itself.
//!
//! `--concurrency` workers run scenarios back to back in shuffled order, each
//! scenario getting its share by the weights of the mix (see
//! [`Mix::deck`](config::Mix::deck)), until `--duration` is up or
//! `--requests` runs are done. A scenario run — what the report calls a run, and times whole —
//! is every request a git client makes for that operation:
//!
//! | scenario | requests | like |
//! |---|---|---|
//! | `ls-refs` | v2 advertisement, `ls-refs` | `git ls-remote` |
//! | `full` | v2 advertisement, `ls-refs`, `fetch` of every branch and tag | `git clone` |
//! | `shallow` | … `fetch` of the default branch, `deepen 1` | `git clone --depth 1` |
//! | `blob-none` | … `fetch` of every branch and tag, `filter blob:none` | `git clone --filter=blob:none` |
//! | `incremental` | … `fetch` of the default branch with `have` its commit `--behind` back | `git fetch` by a clone that is behind |
//! | `by-sha` | … `fetch` of the commit `--behind` back (not a tip), `deepen 1` | CI's `git fetch --depth 1 origin <sha>` |
//! | `push` | receive-pack advertisement, commands + pack of one new commit on a new branch | `git push` |
//!
//! Every answer is checked (see `scenario` and `validate`), so a fast wrong
//! answer counts as an error, never as a fast run: the pack of every fetch is
//! indexed completely while it streams, its trailer checked, and its contents
//! compared with what the request asked for and with the first answer to the
//! same request; every push must be reported `ok` and be listed afterwards.
//!
//! [`run`] does a whole run and returns a [`Report`]; the binary is a thin
//! command line around it.

pub mod config;
pub mod error;
mod fetch_response;
mod http;
mod pkt_stream;
pub mod push_pack;
mod run;
mod scenario;
pub mod stats;
pub mod validate;
mod wire;

pub use config::{Config, Credentials, Mix, Scenario, Stop, Verify};
pub use error::{ErrorKind, RunError, SetupError};
pub use run::run;
pub use stats::{PushedRef, Report, ScenarioReport};
