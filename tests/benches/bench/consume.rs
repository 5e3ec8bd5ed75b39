//! Consume throughput of the worker runtime against raw lapin doing the same work with the
//! same concurrency: the same prefetch, as many handlers at once, the same envelope parse and
//! one ack per message. Two pairs: 200 at once, and one at a time.
//!
//! Both timers start before connecting and stop at the same point: when the last job's
//! handler has returned, which is where each side then acks it (the runtime tells its
//! observer there, before the ack).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use rabbitmq_jobs::{
    Job, JobContext, JobEvent, JobId, JobObserver, JobOutcome, Observed, Registry, work_queue,
};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::throughput::{Bench, NoopJob, RunningWorker, worker_settings};

/// The envelope as raw lapin code would read it: every field the runtime reads, the payload
/// decoded into the job type.
#[derive(Deserialize)]
#[allow(dead_code)] // read to do the same work as the runtime; only kind and version are checked
struct RawEnvelope {
    id: JobId,
    kind: String,
    version: u32,
    created_at: DateTime<Utc>,
    payload: NoopJob,
}

/// What a raw handler does with a delivery: parse the envelope and check it names the job.
fn parse(body: &[u8]) {
    let envelope: RawEnvelope = serde_json::from_slice(body).expect("envelope");
    assert_eq!(envelope.kind, NoopJob::KIND);
    assert_eq!(envelope.version, NoopJob::VERSION);
}

/// Raw lapin with `concurrency` handlers at once (`for_each_concurrent`) and a prefetch of
/// `concurrency`; 1 is the plain loop that awaits each ack before the next delivery.
pub async fn raw(url: &str, count: usize, concurrency: u16) -> f64 {
    let started = Instant::now();
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_qos(concurrency, BasicQosOptions::default())
        .await
        .expect("qos");
    let consumer = channel
        .basic_consume(
            work_queue(NoopJob::KIND).into(),
            "raw".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let handled = AtomicUsize::new(0);
    let finished = std::sync::Mutex::new(None);
    consumer
        .take(count)
        .for_each_concurrent(usize::from(concurrency), |delivery| async {
            let delivery = delivery.expect("delivery");
            parse(&delivery.data);
            if handled.fetch_add(1, Ordering::Relaxed) + 1 == count {
                *finished.lock().expect("timer") = Some(started.elapsed());
            }
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
        })
        .await;
    let elapsed = finished.lock().expect("timer").expect("every job handled");
    let _ = connection.close(200, "done".into()).await;
    count as f64 / elapsed.as_secs_f64()
}

/// Counts jobs the runtime reports handled.
struct Settled {
    done: AtomicUsize,
    target: usize,
    reached: Notify,
}

/// The observer side of [`Settled`].
struct CountSettled(Arc<Settled>);

impl JobObserver for CountSettled {
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a> {
        Box::pin(async move {
            let settled = &self.0;
            if event.outcome == JobOutcome::Succeeded
                && settled.done.fetch_add(1, Ordering::Relaxed) + 1 == settled.target
            {
                settled.reached.notify_one();
            }
            Ok(())
        })
    }
}

/// The runtime at `concurrency` (its prefetch too): decode, dispatch to a no-op handler,
/// ack; timed until the last job's handler has returned.
pub async fn runtime(bench: &Bench, count: usize, concurrency: u16) -> f64 {
    let settled = Arc::new(Settled {
        done: AtomicUsize::new(0),
        target: count,
        reached: Notify::new(),
    });
    let registry = Registry::new()
        .register(|_: NoopJob, _: JobContext| async { Ok(()) })
        .observe(CountSettled(Arc::clone(&settled)));
    let settings = rabbitmq_jobs::WorkerSettings {
        concurrency,
        ..worker_settings("bench")
    };
    let started = Instant::now();
    let worker = RunningWorker::start_with(bench, settings, registry);
    settled.reached.notified().await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    worker.stop().await;
    rate
}
