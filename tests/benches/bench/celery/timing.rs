//! Drain timing that leaves out the worker's start-up, the same for both sides.
//!
//! The backlog is queued with no consumer. The worker process is started, and a passive
//! declare every 2 ms watches the queue: the clock starts when the broker counts its consumer
//! (the process has started, imported, connected, declared and subscribed: all start-up is
//! behind it) and stops when no message is ready. At that moment up to a prefetch's worth
//! may still be in the worker's hands; the prefetch is the same on both sides, so is that.

use std::time::{Duration, Instant};

use lapin::options::QueuePurgeOptions;
use lapin::{Connection, ConnectionProperties};

use crate::memory::queue_counts;
use crate::processes::Process;

const POLL: Duration = Duration::from_millis(2);
const LIMIT: Duration = Duration::from_secs(900);

/// Starts a worker with `start` on `count` queued messages; returns the drain rate from its
/// consumer's registration to an empty queue. Stops the worker.
pub async fn drain(url: &str, queue: &str, count: usize, start: impl FnOnce() -> Process) -> f64 {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    // Unconfirmed publishes may still be on their way into the queue.
    let began = Instant::now();
    while queue_counts(&channel, queue).await.0 as usize != count {
        assert!(
            began.elapsed() < LIMIT,
            "{queue}: the backlog is not {count}"
        );
        tokio::time::sleep(POLL).await;
    }
    let worker = start();
    let began = Instant::now();
    let consuming = loop {
        let (ready, consumers) = queue_counts(&channel, queue).await;
        if consumers > 0 {
            break Instant::now();
        }
        assert!(ready as usize == count, "{queue}: drained with no consumer");
        assert!(began.elapsed() < LIMIT, "{queue}: no consumer in {LIMIT:?}");
        tokio::time::sleep(POLL).await;
    };
    loop {
        let (ready, _) = queue_counts(&channel, queue).await;
        if ready == 0 {
            break;
        }
        assert!(began.elapsed() < LIMIT, "{queue} not drained in {LIMIT:?}");
        tokio::time::sleep(POLL).await;
    }
    let rate = count as f64 / consuming.elapsed().as_secs_f64();
    worker.stop();
    let _ = connection.close(200, "drained".into()).await;
    rate
}

/// Empties `queue`, if it exists (Celery's is declared by its first publisher).
pub async fn purge(url: &str, queue: &str) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    // A missing queue is empty; a backlog that is not what it should be fails the drain.
    let _ = channel
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await;
    let _ = connection.close(200, "purged".into()).await;
}
