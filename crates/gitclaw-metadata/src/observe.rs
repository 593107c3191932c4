//! What a [`Metadata`] handle tells an observer about each of its operations,
//! for metrics, and the span each operation runs in, for traces.
//!
//! For: timing every public database operation of [`Metadata`] (`list_refs`,
//! `commit_push`, …) as one unit, whatever number of statements it runs, and
//! reporting whether it failed. Not for: per-statement timing or logging
//! (sqlx logs statements, and slow ones, itself: see
//! [`crate::ConnectOptions::slow_statement`]), or deciding what to do about a
//! failure.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::{Error, Metadata, Result};

/// Receives one report per public operation of a [`Metadata`] handle, after
/// it finished. Called on the operation's own task: keep it cheap (counters,
/// histograms), never block.
///
/// An operation that is built on other public operations reports each of
/// them as well as itself: [`Metadata::snapshot`] reports `get_repo_by_id`,
/// `list_refs`, `list_packs` and `list_loose`, then `snapshot`;
/// [`Metadata::list_repos`] reports `list_readable_repos`, then `list_repos`.
/// They are distinct operations, so do not add their times up.
pub trait QueryObserver: Send + Sync {
    /// `operation` finished after `elapsed`: `error` is `None` when it
    /// succeeded. `operation` is the method's name (`list_refs`,
    /// `commit_push`, …).
    fn query(&self, operation: &'static str, elapsed: Duration, error: Option<&Error>);
}

/// The observer of a handle, if any, behind a `Debug` the trait object does
/// not have. Cloned with the handle, so every clone reports to it.
#[derive(Clone, Default)]
pub(crate) struct ObserverSlot(Option<Arc<dyn QueryObserver>>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "QueryObserver",
            None => "no QueryObserver",
        })
    }
}

impl Metadata {
    /// This handle, reporting every operation to `observer` from now on —
    /// as do its clones. Clones made before keep what they had.
    pub fn with_observer(mut self, observer: Arc<dyn QueryObserver>) -> Self {
        self.observer = ObserverSlot(Some(observer));
        self
    }

    /// Runs `work`, the body of the public method `operation`, inside a `db`
    /// span and reports its duration and outcome to the observer.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let span = tracing::info_span!("db", operation, db.system = self.backend_name());
        let started = Instant::now();
        let result = async {
            if self.may_be_unreachable() {
                // Rare (no connection open), and its future is large: boxed.
                Box::pin(self.reachable()).await?;
            }
            work.await
        }
        .instrument(span)
        .await;
        if let Some(observer) = &self.observer.0 {
            observer.query(operation, started.elapsed(), result.as_ref().err());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// One report: the operation and, for a failure, the error's text.
    type Report = (&'static str, Option<String>);

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Report>>);

    impl QueryObserver for Recorder {
        fn query(&self, operation: &'static str, _elapsed: Duration, error: Option<&Error>) {
            if let Ok(mut reports) = self.0.lock() {
                reports.push((operation, error.map(Error::to_string)));
            }
        }
    }

    impl Recorder {
        /// The reports so far, clearing them.
        fn take(&self) -> Vec<Report> {
            std::mem::take(&mut *self.0.lock().expect("recorder lock"))
        }

        /// The names of the reports so far, which must all be successes.
        fn take_successes(&self) -> Vec<&'static str> {
            self.take()
                .into_iter()
                .map(|(operation, error)| {
                    assert_eq!(error, None, "{operation} should have succeeded");
                    operation
                })
                .collect()
        }
    }

    async fn observed_db() -> (Metadata, Arc<Recorder>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let recorder = Arc::new(Recorder::default());
        let md = Metadata::connect(&url)
            .await
            .expect("connect")
            .with_observer(recorder.clone());
        (md, recorder, dir)
    }

    #[tokio::test]
    async fn each_call_is_reported_once_under_its_method_name() {
        let (md, recorder, _dir) = observed_db().await;
        assert!(recorder.take().is_empty(), "connecting is not an operation");

        let repo = md.create_repo("o", "n", false, "t").await.expect("create");
        md.list_refs(&repo.id).await.expect("list refs");
        md.get_repo("o", "n").await.expect("get repo");
        md.ping().await.expect("ping");
        md.ping().await.expect("ping again");

        assert_eq!(
            recorder.take_successes(),
            ["create_repo", "list_refs", "get_repo", "ping", "ping"]
        );
    }

    #[tokio::test]
    async fn a_method_built_on_another_reports_both() {
        let (md, recorder, _dir) = observed_db().await;
        md.list_repos(None, 10).await.expect("list repos");
        assert_eq!(
            recorder.take_successes(),
            ["list_readable_repos", "list_repos"]
        );
    }

    #[tokio::test]
    async fn failures_are_reported_with_their_error() {
        let (md, recorder, _dir) = observed_db().await;

        let err = md
            .delete_repo("no-such-id", "t")
            .await
            .expect_err("no such repository");
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        assert_eq!(recorder.take(), [("delete_repo", Some(err.to_string()))]);

        md.close().await;
        let err = md.ping().await.expect_err("the pool is closed");
        assert!(matches!(err, Error::Database(_)), "{err:?}");
        assert_eq!(recorder.take(), [("ping", Some(err.to_string()))]);
    }

    #[tokio::test]
    async fn clones_report_to_the_same_observer() {
        let (md, recorder, _dir) = observed_db().await;
        let copy = md.clone();
        copy.ping().await.expect("ping on the clone");
        md.ping().await.expect("ping on the original");
        assert_eq!(recorder.take_successes(), ["ping", "ping"]);
    }

    /// The server spawns operations on other threads: timing them must not
    /// make their futures `!Send`.
    #[test]
    fn timed_operations_stay_send() {
        fn assert_send<T: Send>(_: &T) {}
        let run = async {
            let md = Metadata::connect("sqlite::memory:").await?;
            md.ping().await?;
            md.snapshot("x").await
        };
        assert_send(&run);
    }

    #[tokio::test]
    async fn a_handle_without_observer_still_works() {
        let md = Metadata::connect("sqlite::memory:").await.expect("connect");
        assert_eq!(format!("{:?}", md.observer), "no QueryObserver");
        md.ping().await.expect("ping without an observer");
    }
}
