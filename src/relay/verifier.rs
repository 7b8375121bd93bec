//! Password checks off the async threads, on a fixed pool of threads: one per core.
//!
//! An Argon2 check takes 19 MiB and tens of milliseconds of CPU. Run on tokio's blocking pool,
//! hundreds of simultaneous AUTH attempts would start hundreds of threads at once, each with its
//! own allocator arena keeping its 19 MiB: gigabytes. A fixed pool bounds both: checks wait
//! their turn in a queue (a waiting attempt costs a few bytes), and each thread reuses its memory.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Dropping it lets its threads end once the queue is empty.
#[derive(Debug)]
pub(crate) struct Verifier {
    jobs: mpsc::Sender<Job>,
}

impl Verifier {
    /// A pool of `threads` threads (at least one).
    pub(crate) fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn a password-check thread");
        }
        Self { jobs }
    }

    /// One per core.
    pub(crate) fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }

    /// Runs `check` on the pool and waits for its answer; `None` if the pool is gone or the
    /// check panicked.
    pub(crate) async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn checks_run_on_the_pool_one_per_thread_at_a_time() {
        let pool = super::Verifier::new(2);
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let checks: Vec<_> = (0..20)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                pool.run(move || {
                    use std::sync::atomic::Ordering;
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
            })
            .collect();
        let answers = futures_util::future::join_all(checks).await;
        assert_eq!(answers, (0..20).map(|i| Some(i * 2)).collect::<Vec<_>>());
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    }
}
