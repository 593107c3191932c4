//! Accounting for one git request: its timer (count by outcome, duration,
//! in-flight, the slow-request warning) and the object-store requests it
//! makes, followed onto the blocking threads that work for it.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{outcome, Metrics};
use crate::error::Fault;

tokio::task_local! {
    /// The object-store requests of the git request this task serves.
    static STORE_REQUESTS: Arc<AtomicU64>;
}

/// Counts the object-store requests made on behalf of one git request: the
/// request's work runs inside [`StoreRequests::scope`] (or `scope_sync` on a
/// blocking thread) and every store request reported there adds one.
#[derive(Clone, Default)]
pub struct StoreRequests(Arc<AtomicU64>);

impl StoreRequests {
    pub async fn scope<F: std::future::Future>(&self, work: F) -> F::Output {
        STORE_REQUESTS.scope(self.0.clone(), work).await
    }

    pub fn scope_sync<R>(&self, work: impl FnOnce() -> R) -> R {
        STORE_REQUESTS.sync_scope(self.0.clone(), work)
    }

    /// The counter of the git request this task serves, if any.
    pub fn current() -> Option<StoreRequests> {
        STORE_REQUESTS.try_with(|n| StoreRequests(n.clone())).ok()
    }

    /// Run `work` counting into `counter` when there is one.
    pub fn within<R>(counter: Option<&StoreRequests>, work: impl FnOnce() -> R) -> R {
        match counter {
            Some(counter) => counter.scope_sync(work),
            None => work(),
        }
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `tokio::task::spawn_blocking` for work done on behalf of the current git
/// request: the blocking thread keeps counting that request's object-store
/// requests and stays inside its tracing span (a pack engine reading loose
/// objects through the store does so from such a thread).
pub fn spawn_blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> tokio::task::JoinHandle<R> {
    let counter = StoreRequests::current();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| StoreRequests::within(counter.as_ref(), work))
    })
}

/// Run work a git request started and left running (see
/// `objects::warm_up`), counting its object-store requests as those of one
/// request of `service` when it ends: every store request stays attributed.
pub async fn background<F: std::future::Future>(
    metrics: &Metrics,
    service: &'static str,
    work: F,
) -> F::Output {
    let counter = StoreRequests::default();
    let output = counter.scope(work).await;
    metrics
        .git_store_requests
        .with_label_values(&[service])
        .observe(counter.get() as f64);
    output
}

pub(super) fn count_store_request() {
    let _ = STORE_REQUESTS.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
}

/// Times one git request and records it when it ends: its count by outcome,
/// its duration, the in-flight gauge, and a warning when it was slower than
/// `GITCLAW_SLOW_REQUEST_MS`. A request dropped before it finished (the client
/// went away mid-answer) counts as `cancelled`.
pub struct GitRequestTimer {
    metrics: Arc<Metrics>,
    service: &'static str,
    protocol: &'static str,
    repo: String,
    started: Instant,
    slow: Duration,
    done: std::sync::atomic::AtomicBool,
    store_requests: StoreRequests,
}

impl GitRequestTimer {
    pub fn start(
        metrics: &Arc<Metrics>,
        service: &'static str,
        protocol: u8,
        repo: String,
        slow: Duration,
    ) -> GitRequestTimer {
        metrics.git_in_flight.with_label_values(&[service]).inc();
        GitRequestTimer {
            metrics: metrics.clone(),
            service,
            protocol: if protocol == 2 { "v2" } else { "v0" },
            repo,
            started: Instant::now(),
            slow,
            done: std::sync::atomic::AtomicBool::new(false),
            store_requests: StoreRequests::default(),
        }
    }

    /// The counter the request's work should run under.
    pub fn store_requests(&self) -> StoreRequests {
        self.store_requests.clone()
    }

    /// The request ended: `fault` is `None` when it succeeded.
    pub fn finish(mut self, fault: Option<Fault>) {
        self.record(outcome(fault));
    }

    /// The request failed before its answer began (the timer is then spent:
    /// dropping it records nothing more).
    pub fn fail(&self, fault: Fault) {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.count(outcome(Some(fault)));
        }
    }

    fn record(&mut self, outcome: &'static str) {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.count(outcome);
        }
    }

    fn count(&self, outcome: &'static str) {
        let elapsed = self.started.elapsed();
        let m = &self.metrics;
        m.git_in_flight.with_label_values(&[self.service]).dec();
        m.git_requests
            .with_label_values(&[self.service, self.protocol, outcome])
            .inc();
        m.git_duration
            .with_label_values(&[self.service])
            .observe(elapsed.as_secs_f64());
        m.git_store_requests
            .with_label_values(&[self.service])
            .observe(self.store_requests.get() as f64);
        if elapsed > self.slow {
            tracing::warn!(
                service = self.service,
                repo = %self.repo,
                duration_ms = elapsed.as_millis() as u64,
                threshold_ms = self.slow.as_millis() as u64,
                request_id = %crate::error::RequestId::current(),
                outcome,
                "slow git request: {} of {} took {} ms",
                self.service,
                self.repo,
                elapsed.as_millis()
            );
        }
    }
}

impl Drop for GitRequestTimer {
    fn drop(&mut self) {
        self.record("cancelled");
    }
}
