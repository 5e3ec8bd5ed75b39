//! The transactional outbox: jobs written in the caller's transaction reach the broker
//! through the relay, whatever happens to the broker, the relay or the client meanwhile.

mod backlog;
mod relaying;
mod uploads;

use std::collections::HashMap;

use lapin::Channel;
use lapin::options::BasicGetOptions;
use rabbitmq_jobs::outbox::{Outbox, OutboxSettings, Relay};
use rabbitmq_jobs::{Job, JobId, Publisher};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Writes `count` jobs made by `job` into the outbox, a thousand per transaction.
pub async fn enqueue<J: Job>(pool: &PgPool, count: usize, job: impl Fn(usize) -> J) -> Vec<JobId> {
    let outbox = Outbox::new(OutboxSettings::default());
    let mut ids = Vec::with_capacity(count);
    let all: Vec<usize> = (0..count).collect();
    for chunk in all.chunks(1000) {
        let jobs: Vec<_> = chunk
            .iter()
            .map(|&n| outbox.encode(&job(n)).unwrap())
            .collect();
        let mut tx = pool.begin().await.unwrap();
        ids.extend(outbox.enqueue(&mut tx, &jobs).await.unwrap());
        tx.commit().await.unwrap();
    }
    ids
}

/// Jobs in the outbox not yet confirmed by the broker.
pub async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Takes every message off `queue` (all published already: nothing is waited for) and
/// counts them by message id.
pub async fn drain(channel: &Channel, queue: &str) -> HashMap<String, u32> {
    let mut deliveries = HashMap::new();
    let options = BasicGetOptions { no_ack: true };
    while let Some(message) = channel
        .basic_get(queue.into(), options)
        .await
        .expect("basic.get")
    {
        let id = message
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
            .expect("a job has a message id");
        *deliveries.entry(id).or_insert(0) += 1;
    }
    deliveries
}

/// A relay running in this process until [`RunningRelay::stop`].
pub struct RunningRelay {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningRelay {
    pub fn start(pool: &PgPool, publisher: &Publisher, batch: u32) -> Self {
        let settings = OutboxSettings {
            batch,
            ..OutboxSettings::default()
        };
        let relay = Relay::new(
            pool.clone(),
            publisher.clone(),
            settings,
            std::time::Duration::from_secs(10),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Every id in `ids` was delivered; returns how many deliveries were beyond one per job.
pub fn assert_all_delivered(deliveries: &HashMap<String, u32>, ids: &[JobId]) -> u32 {
    let missing = ids
        .iter()
        .filter(|id| !deliveries.contains_key(&id.to_string()))
        .count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} jobs never reached the queue",
        ids.len()
    );
    assert_eq!(
        deliveries.len(),
        ids.len(),
        "messages that were never enqueued"
    );
    deliveries.values().map(|n| n - 1).sum()
}
