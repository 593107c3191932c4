//! How many packs are generated at once: at most so many on this instance and
//! so many per repository, with at most so many requests waiting for a turn
//! (for at most so long). A request past those limits is refused with a
//! message git shows, instead of every clone slowing down together until
//! memory or CPU runs out. Only generation counts: a stored pack or a cached
//! response is streamed without a turn.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::config::GenerationLimits;
use crate::{error::GitError, metrics::Metrics};

/// The turns to generate a pack, shared by every request of the instance.
pub struct PackGenerations {
    limits: GenerationLimits,
    instance: Arc<Semaphore>,
    per_repo: Mutex<HashMap<String, Arc<Semaphore>>>,
    waiting: AtomicUsize,
    metrics: Arc<Metrics>,
}

/// A turn: held while a pack is generated and written.
pub struct GenerationSlot {
    permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    repo_id: String,
    repo: Arc<Semaphore>,
    owner: Arc<PackGenerations>,
}

impl PackGenerations {
    pub fn new(limits: GenerationLimits, metrics: Arc<Metrics>) -> Arc<PackGenerations> {
        Arc::new(PackGenerations {
            instance: Arc::new(Semaphore::new(limits.instance.max(1))),
            per_repo: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
            limits,
            metrics,
        })
    }

    /// [`PackGenerations::acquire`] from async code (on a blocking thread).
    pub async fn acquire_async(
        self: &Arc<Self>,
        repo_id: &str,
    ) -> Result<GenerationSlot, GitError> {
        let (this, runtime, repo_id) = (
            self.clone(),
            tokio::runtime::Handle::current(),
            repo_id.to_string(),
        );
        crate::metrics::spawn_blocking(move || this.acquire(&repo_id, &runtime)).await?
    }

    /// A turn for repository `repo_id`, waiting for one if the queue has room.
    /// Blocking: call from a blocking thread, with the runtime's handle.
    pub fn acquire(
        self: &Arc<Self>,
        repo_id: &str,
        runtime: &tokio::runtime::Handle,
    ) -> Result<GenerationSlot, GitError> {
        let repo = self.repo_semaphore(repo_id);
        let take = |repo: &Arc<Semaphore>| {
            let first = repo.clone().try_acquire_owned().ok()?;
            let second = self.instance.clone().try_acquire_owned().ok()?;
            Some((first, second))
        };
        let permits = match take(&repo) {
            Some(permits) => permits,
            None => match self.wait_for_turn(&repo, runtime) {
                Ok(permits) => permits,
                Err(refused) => {
                    self.forget_if_idle(repo_id, &repo);
                    return Err(refused);
                }
            },
        };
        self.metrics.pack_generations_in_use.inc();
        Ok(GenerationSlot {
            permits: Some(permits),
            repo_id: repo_id.to_string(),
            repo,
            owner: self.clone(),
        })
    }

    fn wait_for_turn(
        &self,
        repo: &Arc<Semaphore>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), GitError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(self.refuse(repo));
        }
        let queued = crate::metrics::Raised::new(&self.metrics.pack_generations_queued);
        let (repo_turn, instance) = (repo.clone(), self.instance.clone());
        let wait = self.limits.wait;
        let turn = runtime.block_on(async move {
            let both = async move {
                let first = repo_turn.acquire_owned().await.ok()?;
                let second = instance.acquire_owned().await.ok()?;
                Some((first, second))
            };
            tokio::time::timeout(wait, both).await
        });
        drop(queued);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match turn {
            Ok(Some(permits)) => Ok(permits),
            _ => Err(self.refuse(repo)),
        }
    }

    /// The refusal, counted by which limit was reached.
    fn refuse(&self, repo: &Semaphore) -> GitError {
        let (scope, whose) = if repo.available_permits() == 0 {
            ("repository", "of this repository ")
        } else {
            ("instance", "")
        };
        self.metrics
            .pack_generations_refused
            .with_label_values(&[scope])
            .inc();
        GitError::Busy(format!(
            "too many packs {whose}are being made right now; try again in a moment"
        ))
    }

    /// Drop the repository's entry when `repo` (the caller's copy) and the
    /// map's are the only ones left: nobody holds or waits for a turn.
    fn forget_if_idle(&self, repo_id: &str, repo: &Arc<Semaphore>) {
        let mut map = self.per_repo.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(repo) == 2 {
            map.remove(repo_id);
        }
    }

    fn repo_semaphore(&self, repo_id: &str) -> Arc<Semaphore> {
        let mut map = self.per_repo.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(repo_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_repo.max(1))))
            .clone()
    }
}

impl Drop for GenerationSlot {
    fn drop(&mut self) {
        self.permits = None;
        self.owner.metrics.pack_generations_in_use.dec();
        self.owner.forget_if_idle(&self.repo_id, &self.repo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn generations(instance: usize, per_repo: usize, queue: usize) -> Arc<PackGenerations> {
        PackGenerations::new(
            GenerationLimits {
                instance,
                per_repo,
                queue,
                wait: Duration::from_millis(200),
            },
            Arc::new(Metrics::new()),
        )
    }

    /// A runtime whose timers run by themselves (as the server's do): a
    /// blocking thread waits on it through a handle.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn past_the_per_repository_limit_the_next_request_is_refused_naming_it() {
        let rt = runtime();
        let limits = generations(8, 1, 0);
        let held = limits.acquire("a", rt.handle()).unwrap();
        let err = limits.acquire("a", rt.handle()).err().expect("refused");
        assert!(err.to_string().contains("of this repository"), "{err}");
        // Another repository still gets its turn.
        let other = limits.acquire("b", rt.handle()).unwrap();
        drop((held, other));
        assert!(limits.acquire("a", rt.handle()).is_ok());
        let refused = limits
            .metrics
            .pack_generations_refused
            .with_label_values(&["repository"])
            .get();
        assert_eq!(refused, 1);
    }

    #[test]
    fn a_waiting_request_gets_the_turn_a_finished_one_gives_back() {
        let rt = runtime();
        let limits = generations(1, 1, 1);
        let held = limits.acquire("a", rt.handle()).unwrap();
        let (waiter, handle) = (limits.clone(), rt.handle().clone());
        let waiting = std::thread::spawn(move || waiter.acquire("b", &handle).map(|_| ()));
        std::thread::sleep(Duration::from_millis(50));
        // The queue (one) is full now: a third is refused at once, by the instance limit.
        let err = limits.acquire("c", rt.handle()).err().expect("refused");
        assert!(!err.to_string().contains("of this repository"), "{err}");
        drop(held);
        assert!(waiting.join().unwrap().is_ok(), "the waiter got the turn");
        assert_eq!(limits.metrics.pack_generations_in_use.get(), 0);
        assert!(
            limits.per_repo.lock().unwrap().is_empty(),
            "entries go when unused"
        );
    }

    #[test]
    fn a_wait_past_its_deadline_is_refused() {
        let rt = runtime();
        let limits = generations(1, 4, 8);
        let _held = limits.acquire("a", rt.handle()).unwrap();
        let started = std::time::Instant::now();
        assert!(limits.acquire("b", rt.handle()).is_err());
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(limits.metrics.pack_generations_queued.get(), 0);
    }
}
