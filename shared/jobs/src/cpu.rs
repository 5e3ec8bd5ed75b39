//! A per-process cap on CPU-bound work (decoding, resizing, hashing).
//!
//! A worker runs many jobs at once because most of a job's time is spent waiting (broker,
//! database, storage, mail). CPU-bound work is different: more of it at once than there are
//! cores only adds threads that fight for the same cores, each holding a decoded image in
//! memory, and, on a machine shared with a web tier, crowds out the requests a user waits
//! for. Jobs past the cap wait for a free slot, still holding their delivery.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Runs closures on blocking threads, at most `threads` at a time across the process.
#[derive(Debug, Clone)]
pub struct CpuPool {
    slots: Arc<Semaphore>,
    threads: NonZeroUsize,
}

/// Why CPU-bound work gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CpuTaskError {
    /// The closure panicked (or its thread was cancelled at runtime shutdown).
    #[error("the CPU-bound task did not finish: {0}")]
    Failed(#[from] tokio::task::JoinError),
    /// The pool was closed; it never is, but the semaphore's API allows it.
    #[error("the CPU pool is closed")]
    Closed,
}

impl CpuPool {
    /// A pool that runs at most `threads` closures at once.
    #[must_use]
    pub fn new(threads: NonZeroUsize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(threads.get())),
            threads,
        }
    }

    /// One slot per core this process may use (cgroup CPU limits included).
    #[must_use]
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// How many closures may run at once.
    #[must_use]
    pub fn threads(&self) -> NonZeroUsize {
        self.threads
    }

    /// Waits for a free slot, then runs `work` on a blocking thread. The slot is held until
    /// `work` returns, even if the caller stops waiting (a job timeout): the core is busy
    /// until then.
    pub async fn run<T, F>(&self, work: F) -> Result<T, CpuTaskError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| CpuTaskError::Closed)?;
        let result = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await?;
        Ok(result)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn no_more_closures_run_at_once_than_the_pool_has_threads() {
        let pool = CpuPool::new(NonZeroUsize::new(2).unwrap());
        let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();
        let mut releases = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..3 {
            let (release, released) = mpsc::channel::<()>();
            releases.push(release);
            let (pool, started) = (pool.clone(), started.clone());
            tasks.spawn(async move {
                pool.run(move || {
                    started.send(n).unwrap();
                    released.recv().unwrap();
                })
                .await
            });
        }
        let first = starts.recv().await.unwrap();
        let second = starts.recv().await.unwrap();
        assert_ne!(first, second);
        let third = tokio::time::timeout(Duration::from_millis(200), starts.recv()).await;
        assert!(third.is_err(), "a third closure started beside two running");

        releases[first].send(()).unwrap();
        let third = starts.recv().await.unwrap();
        assert!(third != first && third != second);
        for release in &releases {
            let _ = release.send(());
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_panicking_closure_is_an_error_and_frees_its_slot() {
        let pool = CpuPool::new(NonZeroUsize::MIN);
        let failed = pool.run(|| panic!("corrupt image")).await;
        assert!(matches!(failed, Err(CpuTaskError::Failed(_))));
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
