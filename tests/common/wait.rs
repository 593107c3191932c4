//! Waiting in tests for something nobody announces — a file appearing, a row in
//! the database, a background task finishing its work — by looking again until
//! it is so, or failing once a generous deadline has passed.
//!
//! A fixed sleep instead would be too short on a loaded machine (a flaky
//! failure) and too long everywhere else. A sleep that *is* the behaviour under
//! test (a client stalling on purpose) is not a wait and stays a sleep.
//!
//! Shared by the workspace's tests: `tests/common` declares it, the crates'
//! test helpers include it with `#[path]`. So: std and tokio only.

use std::{
    future::Future,
    time::{Duration, Instant},
};

/// Look at `condition` until it holds; panics naming `what` (what the test was
/// waiting for, e.g. "the spooled pack to appear") when `deadline` passes first.
pub fn wait_until(deadline: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for a condition that must be awaited (a database query).
pub async fn wait_until_async<F: Future<Output = bool>>(
    deadline: Duration,
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// How often a condition is looked at: soon enough to catch a push between
/// two of its phases, rarely enough for conditions that list a bucket.
pub const POLL: Duration = Duration::from_millis(20);
