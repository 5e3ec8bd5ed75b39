//! Publish and consume throughput of the library against raw lapin doing the same work on
//! the same broker, and publish-to-handler latency at half the measured capacity.
//!
//! The two sides alternate over several repetitions in one run, against one broker URL, so
//! that drift of a shared machine hits both alike; each figure is the median.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Confirmation, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use shared::{
    AmqpSettings, EncodedJob, Job, JobContext, JobEvent, JobObserver, JobOutcome, Publisher,
    PublisherSettings, Registry, Topology, Worker, WorkerSettings, work_queue,
};
use tokio::sync::Notify;

use crate::report::{Section, median, per_second, quantile};

/// A job that does nothing, padded to about 300 bytes on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoopJob {
    pub pad: String,
}

impl Job for NoopJob {
    const KIND: &'static str = "bench_noop";
    const VERSION: u32 = 1;
}

impl NoopJob {
    pub fn new() -> Self {
        Self {
            pad: "x".repeat(150),
        }
    }
}

pub const PREFETCH: u16 = 200;
const IN_FLIGHT: usize = 1_000;

/// What the throughput section measured, for the sections after it.
pub struct Capacity {
    pub publish: f64,
    pub consume: f64,
}

pub struct Bench {
    pub url: String,
    pub amqp: AmqpSettings,
    pub publisher: Publisher,
}

impl Bench {
    pub async fn new(url: &str) -> Self {
        let amqp = AmqpSettings::from_url(url).expect("bench AMQP URL");
        let topology = Topology::new([NoopJob::KIND]).expect("topology");
        let publisher = Publisher::connect(&amqp, PublisherSettings::default(), topology, "bench")
            .await
            .expect("bench publisher");
        Self {
            url: url.to_owned(),
            amqp,
            publisher,
        }
    }

    pub async fn purge(&self) {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .queue_purge(
                work_queue(NoopJob::KIND).into(),
                QueuePurgeOptions::default(),
            )
            .await
            .expect("purge");
        let _ = connection.close(200, "purged".into()).await;
    }
}

/// Raw lapin: the same body and properties (an encoded job's), mandatory, a sliding window
/// of confirms.
async fn raw_publish(url: &str, job: &EncodedJob, count: usize) -> f64 {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let properties = job.properties();
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let started = Instant::now();
    let mut window = VecDeque::with_capacity(IN_FLIGHT);
    for _ in 0..count {
        if window.len() >= IN_FLIGHT {
            check_ack(window.pop_front()).await;
        }
        let confirm = channel
            .basic_publish(
                "jobs".into(),
                NoopJob::KIND.into(),
                options,
                &job.body,
                properties.clone(),
            )
            .await
            .expect("publish");
        window.push_back(confirm);
    }
    while let Some(confirm) = window.pop_front() {
        check_ack(Some(confirm)).await;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = connection.close(200, "done".into()).await;
    rate
}

async fn check_ack(confirm: Option<lapin::PublisherConfirm>) {
    if let Some(confirm) = confirm {
        let confirmation = confirm.await.expect("confirm");
        assert!(
            matches!(confirmation, Confirmation::Ack(None)),
            "raw publish not routed: {confirmation:?}"
        );
    }
}

/// The library: typed jobs, encoded per job, through `publish_batch`.
async fn typed_publish(bench: &Bench, count: usize) -> f64 {
    let jobs = vec![NoopJob::new(); count];
    let started = Instant::now();
    bench
        .publisher
        .publish_batch(&jobs)
        .await
        .expect("typed publish");
    count as f64 / started.elapsed().as_secs_f64()
}

/// Raw lapin: consume with manual acks, one ack per message, at the same prefetch.
async fn raw_consume(url: &str, count: usize) -> f64 {
    let started = Instant::now();
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = channel
        .basic_consume(
            work_queue(NoopJob::KIND).into(),
            "raw".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut acked = 0;
    while acked < count {
        let delivery = consumer
            .next()
            .await
            .expect("stream ended")
            .expect("delivery");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        acked += 1;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = connection.close(200, "done".into()).await;
    rate
}

/// Counts jobs settled (acked) by the runtime.
struct Settled {
    done: AtomicUsize,
    target: usize,
    reached: Notify,
}

/// The observer side of [`Settled`].
struct CountSettled(Arc<Settled>);

impl JobObserver for CountSettled {
    fn observe<'a>(
        &'a self,
        event: JobEvent<'a>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let settled = &self.0;
            if event.outcome == JobOutcome::Succeeded
                && settled.done.fetch_add(1, Ordering::Relaxed) + 1 == settled.target
            {
                settled.reached.notify_one();
            }
        })
    }
}

pub fn worker_settings(name: &str) -> WorkerSettings {
    WorkerSettings {
        name: name.to_owned(),
        prefetch: PREFETCH,
        concurrency: u32::from(PREFETCH),
        ..WorkerSettings::default()
    }
}

/// The runtime: decode, dispatch to a no-op handler, ack; timed until `count` are acked.
async fn typed_consume(bench: &Bench, count: usize) -> f64 {
    let settled = Arc::new(Settled {
        done: AtomicUsize::new(0),
        target: count,
        reached: Notify::new(),
    });
    let registry = Registry::new()
        .register(|_: NoopJob, _: JobContext| async { Ok(()) })
        .observe(CountSettled(Arc::clone(&settled)));
    let worker = Worker::new(
        bench.amqp.clone(),
        worker_settings("bench"),
        PublisherSettings::default(),
        registry,
    )
    .expect("worker");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    settled.reached.notified().await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = running.await;
    rate
}

/// Publish and consume, library against raw lapin, interleaved `rounds` times.
pub async fn run(bench: &Bench, count: usize, rounds: usize, section: &mut Section) -> Capacity {
    let job = EncodedJob::encode(&NoopJob::new()).expect("encode");
    let (mut raw_pub, mut ours_pub, mut raw_con, mut ours_con) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        bench.purge().await;
        // Alternate which side goes first, so neither always meets a warmer broker.
        if round % 2 == 0 {
            raw_pub.push(raw_publish(&bench.url, &job, count).await);
            ours_pub.push(typed_publish(bench, count).await);
        } else {
            ours_pub.push(typed_publish(bench, count).await);
            raw_pub.push(raw_publish(&bench.url, &job, count).await);
        }
        // Each consumer meets a queue of exactly `count` jobs: a fast consumer must not eat
        // into the other's share (it would wait for jobs that never come).
        bench.purge().await;
        for raw_first in [round % 2 == 0, round % 2 != 0] {
            typed_publish(bench, count).await;
            if raw_first {
                raw_con.push(raw_consume(&bench.url, count).await);
            } else {
                ours_con.push(typed_consume(bench, count).await);
            }
        }
        eprintln!(
            "  round {round}: publish raw {:.0}/s ours {:.0}/s; consume raw {:.0}/s ours {:.0}/s",
            raw_pub[round], ours_pub[round], raw_con[round], ours_con[round]
        );
    }
    let (raw_pub, ours_pub) = (median(&mut raw_pub), median(&mut ours_pub));
    let (raw_con, ours_con) = (median(&mut raw_con), median(&mut ours_con));
    let note = format!("median of {rounds} interleaved rounds of {count} jobs");
    section.add(
        "publish: raw lapin, pipelined confirms",
        per_second(raw_pub),
        &note,
    );
    section.add(
        "publish: typed publisher (publish_batch)",
        per_second(ours_pub),
        &note,
    );
    section.add(
        "publish ratio (typed / raw)",
        format!("{:.2}", ours_pub / raw_pub),
        "target ≥ 0.9",
    );
    section.add(
        format!("consume: raw lapin, manual acks, prefetch {PREFETCH}"),
        per_second(raw_con),
        &note,
    );
    section.add(
        "consume: worker runtime, no-op handler",
        per_second(ours_con),
        &note,
    );
    section.add(
        "consume ratio (runtime / raw)",
        format!("{:.2}", ours_con / raw_con),
        "target ≥ 0.9",
    );
    Capacity {
        publish: ours_pub,
        consume: ours_con,
    }
}

/// Publish-to-handler latency at `rate` jobs/s for `duration`, each job published on its
/// own (as web requests do) and timed from its envelope's `created_at` to its handler.
pub async fn latency(
    bench: &Bench,
    rate: f64,
    duration: Duration,
    label: &str,
    section: &mut Section,
) {
    bench.purge().await;
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&samples);
    let registry = Registry::new().register(move |_: NoopJob, ctx: JobContext| {
        let sink = Arc::clone(&sink);
        async move {
            let waited = chrono::Utc::now() - ctx.created_at;
            let millis = waited.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
            sink.lock().expect("samples").push(millis);
            Ok(())
        }
    });
    let worker = Worker::new(
        bench.amqp.clone(),
        worker_settings("latency"),
        PublisherSettings::default(),
        registry,
    )
    .expect("worker");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let total = (rate * duration.as_secs_f64()) as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut publishes = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..total {
        ticks.tick().await;
        let publisher = bench.publisher.clone();
        publishes.spawn(async move { publisher.publish(&NoopJob::new()).await.map(drop) });
    }
    while let Some(result) = publishes.join_next().await {
        result.expect("publish task").expect("publish");
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    support::wait_until(
        Duration::from_secs(60),
        "every latency job handled",
        || async { samples.lock().expect("samples").len() >= total },
    )
    .await
    .expect("latency run");
    let _ = stop.send(());
    let _ = running.await;
    let mut sorted = samples.lock().expect("samples").clone();
    sorted.sort_by(f64::total_cmp);
    let note = format!("{total} jobs asked at {rate:.0}/s ({label}), published at {achieved:.0}/s");
    section.add(
        format!("latency p50, {rate:.0}/s"),
        format!("{:.1} ms", quantile(&sorted, 0.5)),
        &note,
    );
    section.add(
        format!("latency p99, {rate:.0}/s"),
        format!("{:.1} ms", quantile(&sorted, 0.99)),
        &note,
    );
    section.add(
        format!("latency max, {rate:.0}/s"),
        format!("{:.1} ms", sorted.last().copied().unwrap_or(0.0)),
        &note,
    );
}
