//! The resilience policy every S3 call runs under.
//!
//! - A failed attempt whose error [`is_retryable`](crate::StorageError::is_retryable)
//!   is tried again, up to `max_retries` times; anything else fails at once.
//! - Retry `n` (0-based) waits a random point in the upper half of
//!   `min(100 ms · 2^n, retry_max_backoff)` ("equal jitter"): spread out, so
//!   clients that failed together do not come back together, yet still growing.
//! - A pause shared by all calls of a backend, waited before each attempt, grows
//!   on `503 SlowDown` (doubled, at least 50 ms, at most `retry_max_backoff`) and
//!   shrinks by a fifth on each success, so a store that asks for less traffic
//!   gets it from every call, not only the one that was told.
//! - Each call is logged at DEBUG, or as a warning when slower than `slow_op`;
//!   each retry as a warning and each final failure as an error, with the
//!   store's request id.
//!
//! The policy does not sleep or draw jitter itself: it asks a [`Sleeper`] and a
//! `fastrand::Rng` it is given. A backend uses tokio's timer and a randomly
//! seeded generator; the tests give a sleeper that records the delays asked for
//! and a seeded generator, and check those delays against the rules above
//! without waiting for them.

use std::{
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{client::S3Settings, failure::Failure};
use crate::error::{Result, StorageError};

/// First retry delay; each further retry doubles it (before jitter and the cap).
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// The least pause a `SlowDown` sets.
const MIN_THROTTLE: Duration = Duration::from_millis(50);
/// A decaying pause below this is dropped to zero.
const THROTTLE_FLOOR: Duration = Duration::from_millis(5);

/// The delays between retries: retry `attempt` (0-based) waits a point in the
/// upper half of `min(base · 2^attempt, cap)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(cap: Duration) -> Backoff {
        Backoff {
            base: BASE_BACKOFF,
            cap,
        }
    }

    /// The longest retry `attempt` waits: `base · 2^attempt`, capped.
    fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap)
    }

    /// The wait before retry `attempt` for a jitter draw `fraction` in `[0, 1]`:
    /// `fraction` of the way through the upper half of [`Backoff::ceiling`].
    fn delay(&self, attempt: u32, fraction: f64) -> Duration {
        let half = self.ceiling(attempt) / 2;
        half + half.mul_f64(fraction)
    }
}

/// The delay before retry number `attempt` (0-based): `BASE · 2^attempt`, capped,
/// with "equal jitter" (a random point in its upper half), so delays still grow.
pub fn backoff_delay(attempt: u32, cap: Duration) -> Duration {
    Backoff::new(cap).delay(attempt, fastrand::f64())
}

/// Where the policy waits: tokio's timer in a backend, a recorder in tests.
#[async_trait]
pub(super) trait Sleeper: Send + Sync + 'static {
    async fn sleep(&self, delay: Duration);
}

/// Real waiting, on tokio's timer.
struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
    }
}

/// The adaptive pause every call waits before it is sent: doubled on each
/// `503 SlowDown`, shrunk by a fifth on each success.
#[derive(Debug, Default)]
struct Throttle {
    pause: Mutex<Duration>,
}

impl Throttle {
    fn current(&self) -> Duration {
        *self.pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slow_down(&self, cap: Duration) {
        let mut pause = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        *pause = (*pause * 2).max(MIN_THROTTLE).min(cap);
    }

    fn relax(&self) {
        let mut pause = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        if !pause.is_zero() {
            *pause = (*pause * 4) / 5;
            if *pause < THROTTLE_FLOOR {
                *pause = Duration::ZERO;
            }
        }
    }
}

/// The policy of the module doc, with its throttle; one per backend, shared by
/// its clones.
pub(super) struct RetryPolicy {
    max_retries: u32,
    backoff: Backoff,
    slow_op: Duration,
    throttle: Throttle,
    sleeper: Box<dyn Sleeper>,
    jitter: Mutex<fastrand::Rng>,
    /// Told of every attempt and retry, when set.
    observer: Option<std::sync::Arc<dyn crate::StoreObserver>>,
}

impl RetryPolicy {
    /// The policy `settings` ask for, waiting on tokio's timer with random jitter.
    pub(super) fn new(settings: &S3Settings) -> RetryPolicy {
        RetryPolicy::with_timing(settings, Box::new(TokioSleeper), fastrand::Rng::new())
    }

    /// The policy `settings` ask for, waiting on `sleeper` and drawing jitter from `jitter`.
    pub(super) fn with_timing(
        settings: &S3Settings,
        sleeper: Box<dyn Sleeper>,
        jitter: fastrand::Rng,
    ) -> RetryPolicy {
        RetryPolicy {
            max_retries: settings.max_retries,
            backoff: Backoff::new(settings.retry_max_backoff),
            slow_op: settings.slow_op,
            throttle: Throttle::default(),
            sleeper,
            jitter: Mutex::new(jitter),
            observer: None,
        }
    }

    /// Report every attempt and retry to `observer`.
    pub(super) fn observed_by(
        mut self,
        observer: std::sync::Arc<dyn crate::StoreObserver>,
    ) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tell the observer, if any, that a call moved `bytes`.
    pub(super) fn transferred(&self, direction: crate::Transfer, bytes: u64) {
        if let Some(observer) = &self.observer {
            observer.transferred(direction, bytes);
        }
    }

    pub(super) fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The wait before retry `attempt`, with a fresh jitter draw.
    fn next_delay(&self, attempt: u32) -> Duration {
        let fraction = self.jitter.lock().unwrap_or_else(|p| p.into_inner()).f64();
        self.backoff.delay(attempt, fraction)
    }

    /// Wait before retry `attempt` (0-based), for a caller that retries part of
    /// a call itself (the keys a DeleteObjects left behind).
    pub(super) async fn back_off(&self, attempt: u32) {
        self.sleeper.sleep(self.next_delay(attempt)).await;
    }

    /// Run one logical S3 call, `attempt_fn` being one try of it, under the policy.
    #[tracing::instrument(name = "s3", level = "info", skip_all, fields(operation = op, key = key))]
    pub(super) async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        key: &str,
        mut attempt_fn: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let pause = self.throttle.current();
            if !pause.is_zero() {
                self.sleeper.sleep(pause).await;
            }
            let attempt_started = Instant::now();
            let result = attempt_fn().await;
            if let Some(observer) = &self.observer {
                let error = result.as_ref().err().map(|failure| &failure.error);
                observer.request(op, attempt_started.elapsed(), error);
            }
            match result {
                Ok(value) => {
                    self.throttle.relax();
                    let elapsed = started.elapsed();
                    if elapsed > self.slow_op {
                        tracing::warn!(
                            op,
                            key,
                            duration_ms = elapsed.as_millis() as u64,
                            threshold_ms = self.slow_op.as_millis() as u64,
                            retries = attempt,
                            "slow S3 call: {op} {key} took {} ms",
                            elapsed.as_millis()
                        );
                    } else {
                        tracing::debug!(
                            op,
                            key,
                            duration_ms = elapsed.as_millis() as u64,
                            "S3 call"
                        );
                    }
                    return Ok(value);
                }
                Err(failure) => {
                    if failure.is_throttled() {
                        self.throttle.slow_down(self.backoff.cap);
                    }
                    let request_id = failure.request_id.as_deref().unwrap_or("-");
                    if failure.is_retryable() && attempt < self.max_retries {
                        let delay = self.next_delay(attempt);
                        attempt += 1;
                        if let Some(observer) = &self.observer {
                            observer.retry(op);
                        }
                        tracing::warn!(
                            op,
                            key,
                            request_id,
                            attempt,
                            max_retries = self.max_retries,
                            delay_ms = delay.as_millis() as u64,
                            error = %failure.error,
                            "S3 call failed; retrying"
                        );
                        self.sleeper.sleep(delay).await;
                        continue;
                    }
                    if matches!(failure.error, StorageError::NotFound { .. }) {
                        tracing::debug!(op, key, request_id, "S3 key not found");
                    } else {
                        tracing::error!(
                            op,
                            key,
                            request_id,
                            retries = attempt,
                            error = %failure.error,
                            "S3 call failed"
                        );
                    }
                    return Err(failure.error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Returns at once and remembers every delay it was asked to wait.
    #[derive(Clone, Default)]
    struct RecordingSleeper(Arc<Mutex<Vec<Duration>>>);

    impl RecordingSleeper {
        fn asked(&self) -> Vec<Duration> {
            self.0.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Sleeper for RecordingSleeper {
        async fn sleep(&self, delay: Duration) {
            self.0.lock().unwrap().push(delay);
        }
    }

    const SEED: u64 = 0x5eed;

    fn settings(max_retries: u32, cap: Duration) -> S3Settings {
        let mut settings = S3Settings::new("bucket", "region");
        settings.max_retries = max_retries;
        settings.retry_max_backoff = cap;
        settings
    }

    fn recorded_policy(max_retries: u32, cap: Duration) -> (RetryPolicy, RecordingSleeper) {
        let sleeper = RecordingSleeper::default();
        let policy = RetryPolicy::with_timing(
            &settings(max_retries, cap),
            Box::new(sleeper.clone()),
            fastrand::Rng::with_seed(SEED),
        );
        (policy, sleeper)
    }

    /// The delays the policy must ask for before retries `0..retries`, replaying
    /// the jitter draws of a generator with the policy's seed.
    fn expected_delays(retries: u32, cap: Duration) -> Vec<Duration> {
        let mut rng = fastrand::Rng::with_seed(SEED);
        (0..retries)
            .map(|attempt| {
                let ceiling = (BASE_BACKOFF * 2u32.pow(attempt.min(20))).min(cap);
                let half = ceiling / 2;
                half + half.mul_f64(rng.f64())
            })
            .collect()
    }

    /// Runs a call whose first `failures` attempts fail with `error()`; returns
    /// its result and how many attempts were made.
    fn run_failing(
        policy: &RetryPolicy,
        failures: usize,
        error: impl Fn() -> StorageError,
    ) -> (Result<&'static str>, usize) {
        let attempts = std::cell::Cell::new(0);
        let result = futures_util::FutureExt::now_or_never(policy.run("GetObject", "k", || {
            let n = attempts.get();
            attempts.set(n + 1);
            let outcome = if n < failures {
                Err(Failure::from(error()))
            } else {
                Ok("bytes")
            };
            async move { outcome }
        }))
        .expect("a recording sleeper never makes the call wait");
        (result, attempts.get())
    }

    fn connection() -> StorageError {
        StorageError::Connection("HTTP 503".into())
    }

    #[test]
    fn each_retry_waits_the_jittered_doubling_delay_then_the_call_gives_up() {
        let cap = Duration::from_secs(30);
        let (policy, sleeper) = recorded_policy(3, cap);
        let (result, attempts) = run_failing(&policy, usize::MAX, connection);
        assert!(
            matches!(result, Err(StorageError::Connection(_))),
            "after the last retry the caller sees the store's error: {result:?}"
        );
        assert_eq!(attempts, 4, "one try and max_retries = 3 retries");
        let asked = sleeper.asked();
        assert_eq!(asked, expected_delays(3, cap), "one delay per retry");
        for (attempt, delay) in asked.iter().enumerate() {
            let ceiling = Duration::from_millis(100 << attempt);
            assert!(
                *delay >= ceiling / 2 && *delay <= ceiling,
                "retry {attempt} waits within the upper half of {ceiling:?}: {delay:?}"
            );
        }
    }

    #[test]
    fn a_call_that_recovers_waits_only_before_the_retries_it_needed() {
        let cap = Duration::from_secs(30);
        for failures in 0..=3 {
            let (policy, sleeper) = recorded_policy(3, cap);
            let (result, attempts) = run_failing(&policy, failures, connection);
            assert_eq!(
                result.ok(),
                Some("bytes"),
                "{failures} faults fit in 3 retries"
            );
            assert_eq!(attempts, failures + 1);
            assert_eq!(sleeper.asked(), expected_delays(failures as u32, cap));
        }
        let (policy, sleeper) = recorded_policy(0, cap);
        let (result, attempts) = run_failing(&policy, 1, connection);
        assert!(result.is_err(), "max_retries = 0 never retries");
        assert_eq!((attempts, sleeper.asked()), (1, vec![]));
    }

    #[test]
    fn only_errors_that_say_they_are_retryable_are_retried() {
        let errors: Vec<fn() -> StorageError> = vec![
            || StorageError::NotFound { key: "k".into() },
            || StorageError::Corrupted {
                key: "k".into(),
                detail: "bad".into(),
            },
            connection,
            || StorageError::BucketNotFound("b".into()),
            || StorageError::AccessDenied("403".into()),
            || StorageError::RateLimited("SlowDown".into()),
            || StorageError::UploadFailed {
                key: "k".into(),
                detail: "no upload id".into(),
            },
            || StorageError::InvalidKey("k".into()),
            || StorageError::Io {
                context: "reading a part".into(),
                source: std::io::Error::other("disk"),
            },
            || StorageError::Other("HTTP 400".into()),
        ];
        for error in errors {
            let retryable = error().is_retryable();
            let (policy, sleeper) = recorded_policy(2, Duration::from_secs(30));
            let (result, attempts) = run_failing(&policy, 1, error);
            if retryable {
                assert_eq!(result.ok(), Some("bytes"), "{} is retried", error());
                assert_eq!(attempts, 2);
                // (A RateLimited also sets the shared pause, waited after the
                // backoff: see the SlowDown test.)
                assert_eq!(
                    sleeper.asked()[..1],
                    expected_delays(1, policy.backoff.cap),
                    "{} waits the first retry's backoff",
                    error()
                );
            } else {
                let err = result.expect_err("a non-retryable error fails the call");
                assert_eq!(err.code(), error().code());
                assert_eq!(attempts, 1, "{} is not retried", error());
                assert!(sleeper.asked().is_empty(), "{} waits for nothing", error());
            }
        }
    }

    #[test]
    fn the_cap_bounds_every_delay_and_growth_stops_there() {
        let cap = Duration::from_millis(450);
        let (policy, sleeper) = recorded_policy(8, cap);
        let (result, attempts) = run_failing(&policy, usize::MAX, connection);
        assert!(
            result.is_err() && attempts == 9,
            "{result:?} after {attempts}"
        );
        let asked = sleeper.asked();
        assert_eq!(asked, expected_delays(8, cap));
        assert!(asked.iter().all(|d| *d <= cap), "{asked:?} within {cap:?}");
        assert!(
            asked[3..].iter().all(|d| *d >= cap / 2),
            "from the fourth retry on, 100 ms · 2^n is past the cap: {asked:?}"
        );
        let backoff = Backoff::new(cap);
        for attempt in [3, 10, 20, 31, 1000, u32::MAX] {
            assert_eq!(backoff.ceiling(attempt), cap, "retry {attempt}");
        }
    }

    #[test]
    fn jitter_spans_the_upper_half_of_each_delay() {
        let backoff = Backoff::new(Duration::from_secs(30));
        for attempt in 0..5 {
            let ceiling = Duration::from_millis(100 << attempt);
            assert_eq!(backoff.ceiling(attempt), ceiling);
            assert_eq!(backoff.delay(attempt, 0.0), ceiling / 2);
            assert_eq!(backoff.delay(attempt, 1.0), ceiling);
            assert_eq!(
                backoff.delay(attempt + 1, 0.0),
                backoff.delay(attempt, 1.0),
                "the least delay of a retry is the most of the one before: delays never shrink"
            );
        }
        let delay = backoff_delay(2, Duration::from_secs(30));
        assert!(
            (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&delay),
            "the public helper draws in the same range: {delay:?}"
        );
    }

    #[test]
    fn slow_down_pauses_every_later_attempt_and_success_relaxes_it() {
        let cap = Duration::from_secs(30);
        let (policy, sleeper) = recorded_policy(3, cap);
        let slow_down = || StorageError::RateLimited("SlowDown".into());
        let (result, attempts) = run_failing(&policy, 2, slow_down);
        assert_eq!((result.ok(), attempts), (Some("bytes"), 3));
        let backoff = expected_delays(2, cap);
        assert_eq!(
            sleeper.asked(),
            [
                backoff[0],
                Duration::from_millis(50),
                backoff[1],
                Duration::from_millis(100),
            ],
            "each retry waits its backoff, then the shared pause the SlowDowns set"
        );
        assert_eq!(policy.throttle.current(), Duration::from_millis(80));
        let before = sleeper.asked().len();
        let (result, _) = run_failing(&policy, 0, connection);
        assert!(result.is_ok());
        assert_eq!(
            sleeper.asked()[before..],
            [Duration::from_millis(80)],
            "the next call waits the pause too"
        );
        assert_eq!(policy.throttle.current(), Duration::from_millis(64));
    }

    #[test]
    fn throttle_doubles_on_slow_down_and_decays() {
        let throttle = Throttle::default();
        let cap = Duration::from_secs(1);
        throttle.slow_down(cap);
        assert_eq!(throttle.current(), Duration::from_millis(50));
        throttle.slow_down(cap);
        assert_eq!(throttle.current(), Duration::from_millis(100));
        for _ in 0..50 {
            throttle.relax();
        }
        assert_eq!(throttle.current(), Duration::ZERO);
        for _ in 0..20 {
            throttle.slow_down(cap);
        }
        assert_eq!(throttle.current(), cap);
    }

    #[test]
    fn a_partial_delete_backs_off_like_a_retry() {
        let cap = Duration::from_secs(30);
        let (policy, sleeper) = recorded_policy(3, cap);
        for attempt in 0..3 {
            futures_util::FutureExt::now_or_never(policy.back_off(attempt))
                .expect("a recording sleeper never makes the caller wait");
        }
        assert_eq!(sleeper.asked(), expected_delays(3, cap));
    }
}
