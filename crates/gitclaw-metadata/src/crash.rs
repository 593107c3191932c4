//! Crash points: named places in a push and a compaction where the process can
//! be made to die on purpose, as `kill -9` would kill it there.
//!
//! For: the crash tests (`tests/crash_points.rs`), which start a process with
//! `GITCLAW_CRASH_AT=<point>` and check that what survives the crash — refs,
//! stored keys, clones — is whole. The hook lives in this crate because the
//! points inside the metadata transactions (`push:in-transaction`,
//! `gc:in-swap`) are here; the server calls the same function for its own.
//!
//! Not a setting: it is read straight from the environment, is in no settings
//! table, and costs nothing when unset — the variable is read once, and each
//! point is one comparison with the cached value.

use std::sync::OnceLock;

/// The environment variable naming the point to die at.
const VARIABLE: &str = "GITCLAW_CRASH_AT";

/// Die here, at once, if `GITCLAW_CRASH_AT` names this point: one line to
/// stderr so the test can tell the point was reached, then
/// [`std::process::abort`] — no destructor runs, no lease is released, no
/// transaction is rolled back by us, exactly as after `kill -9`.
pub fn crash_point(name: &str) {
    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    let at = CRASH_AT.get_or_init(|| std::env::var(VARIABLE).ok().filter(|v| !v.is_empty()));
    if at.as_deref() == Some(name) {
        eprintln!("crash point {name} reached: aborting");
        std::process::abort();
    }
}
