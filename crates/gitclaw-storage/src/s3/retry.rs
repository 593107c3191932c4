//! The resilience policy every S3 call runs under.
//!
//! Retries of retryable failures with exponential backoff and jitter up to
//! `max_retries`, capped at `retry_max_backoff`; an adaptive pause shared by all
//! calls that grows on `503 SlowDown` and decays on success; a DEBUG line for
//! every call, a warning for calls slower than `slow_op`, and the request id on
//! every error.

use std::{
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{failure::Failure, S3Backend};
use crate::error::{Result, StorageError};

/// First retry delay; each further retry doubles it (before jitter and the cap).
const BASE_BACKOFF: Duration = Duration::from_millis(100);

/// The adaptive pause every call waits before it is sent: doubled on each
/// `503 SlowDown`, shrunk by a fifth on each success.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    pause: Mutex<Duration>,
}

impl Throttle {
    fn current(&self) -> Duration {
        *self.pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slow_down(&self, cap: Duration) {
        let mut pause = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        *pause = (*pause * 2).max(Duration::from_millis(50)).min(cap);
    }

    fn relax(&self) {
        let mut pause = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        if !pause.is_zero() {
            *pause = (*pause * 4) / 5;
            if *pause < Duration::from_millis(5) {
                *pause = Duration::ZERO;
            }
        }
    }
}

/// The delay before retry number `attempt` (0-based): `BASE · 2^attempt`, capped,
/// with "equal jitter" (a random point in its upper half), so delays still grow.
pub fn backoff_delay(attempt: u32, cap: Duration) -> Duration {
    let full = BASE_BACKOFF
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(cap);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

impl S3Backend {
    /// Run one logical S3 call under the retry, throttle, logging and slow-call policy.
    pub(super) async fn call<T, F, Fut>(
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
                tokio::time::sleep(pause).await;
            }
            let result = attempt_fn().await;
            match result {
                Ok(value) => {
                    self.throttle.relax();
                    let elapsed = started.elapsed();
                    if elapsed > self.settings.slow_op {
                        tracing::warn!(
                            op,
                            key,
                            duration_ms = elapsed.as_millis() as u64,
                            threshold_ms = self.settings.slow_op.as_millis() as u64,
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
                        self.throttle.slow_down(self.settings.retry_max_backoff);
                    }
                    let request_id = failure.request_id.as_deref().unwrap_or("-");
                    if failure.is_retryable() && attempt < self.settings.max_retries {
                        let delay = backoff_delay(attempt, self.settings.retry_max_backoff);
                        attempt += 1;
                        tracing::warn!(
                            op,
                            key,
                            request_id,
                            attempt,
                            max_retries = self.settings.max_retries,
                            delay_ms = delay.as_millis() as u64,
                            error = %failure.error,
                            "S3 call failed; retrying"
                        );
                        tokio::time::sleep(delay).await;
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
    use super::*;

    #[test]
    fn backoff_grows_until_the_cap() {
        let cap = Duration::from_secs(2);
        let mut previous = Duration::ZERO;
        for attempt in 0..5 {
            let delay = backoff_delay(attempt, cap);
            let full = BASE_BACKOFF * 2u32.pow(attempt);
            assert!(
                delay >= full.min(cap) / 2 && delay <= full.min(cap),
                "{attempt}: {delay:?}"
            );
            assert!(delay >= previous, "delays never shrink before the cap");
            previous = delay;
        }
        for attempt in [10, 31, 1000] {
            assert!(backoff_delay(attempt, cap) <= cap, "the cap holds");
        }
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
}
