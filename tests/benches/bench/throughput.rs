//! Publish and consume throughput of the library against raw lapin doing the same work on
//! the same broker.
//!
//! The two sides alternate over several repetitions in one run, against one broker URL, so
//! that drift of a shared machine hits both alike; each figure is the median.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use shared::{
    AmqpSettings, EncodedJob, Job, JobContext, JobEvent, JobObserver, JobOutcome, Publisher,
    PublisherSettings, Registry, Topology, Worker, WorkerSettings, work_queue,
};
use tokio::sync::Notify;

use crate::report::{Section, median, per_second};

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

pub struct Bench {
    pub url: String,
    pub amqp: AmqpSettings,
    /// For everything but the publish comparison (filling queues, other sections).
    pub publisher: Publisher,
    /// The publish comparison's two sides, each on its own long-lived connection used for
    /// nothing else, as an app's publisher is: a channel that has carried traffic for a
    /// while publishes measurably slower than a fresh one, so both sides must be alike.
    compared: Publisher,
    raw: RawLane,
}

/// Raw lapin's side: one connection and one confirm channel.
struct RawLane {
    _connection: Connection,
    channel: Channel,
}

impl RawLane {
    async fn open(url: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        Self {
            _connection: connection,
            channel,
        }
    }
}

impl Bench {
    pub async fn new(url: &str) -> Self {
        let amqp = AmqpSettings::from_url(url).expect("bench AMQP URL");
        let publisher = connect_publisher(&amqp, 2).await;
        let compared = connect_publisher(&amqp, 1).await;
        Self {
            url: url.to_owned(),
            raw: RawLane::open(url).await,
            amqp,
            publisher,
            compared,
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

pub async fn connect_publisher(amqp: &AmqpSettings, channels: u16) -> Publisher {
    let topology = Topology::new([NoopJob::KIND]).expect("topology");
    let settings = PublisherSettings {
        channels,
        ..PublisherSettings::default()
    };
    Publisher::connect(amqp, settings, topology, "bench")
        .await
        .expect("bench publisher")
}

/// Raw lapin: the same body and properties (an encoded job's), mandatory, a sliding window
/// of confirms.
async fn raw_publish(channel: &Channel, job: &EncodedJob, count: usize) -> f64 {
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
    count as f64 / started.elapsed().as_secs_f64()
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
async fn typed_publish(publisher: &Publisher, count: usize) -> f64 {
    let jobs = vec![NoopJob::new(); count];
    let started = Instant::now();
    publisher.publish_batch(&jobs).await.expect("typed publish");
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
        concurrency: PREFETCH,
        ..WorkerSettings::default()
    }
}

/// The runtime: decode, dispatch to a no-op handler, ack; timed until `count` are acked.
pub async fn typed_consume(bench: &Bench, count: usize) -> f64 {
    let settled = Arc::new(Settled {
        done: AtomicUsize::new(0),
        target: count,
        reached: Notify::new(),
    });
    let registry = Registry::new()
        .register(|_: NoopJob, _: JobContext| async { Ok(()) })
        .observe(CountSettled(Arc::clone(&settled)));
    let started = Instant::now();
    let worker = RunningWorker::start(bench, "bench", registry);
    settled.reached.notified().await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    worker.stop().await;
    rate
}

/// The worker runtime running in this process until stopped.
pub struct RunningWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    pub fn start(bench: &Bench, name: &str, registry: Registry) -> Self {
        let worker = Worker::new(
            bench.amqp.clone(),
            worker_settings(name),
            PublisherSettings::default(),
            registry,
        )
        .expect("worker");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            // What it did shows in the jobs it settled, which the caller counts.
            let _ = worker.run(shutdown).await;
        });
        Self { stop, running }
    }

    /// Asks the worker to drain and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.running.await;
    }
}

/// One comparison's rates over the rounds: raw lapin's and ours.
#[derive(Default)]
struct Pair {
    raw: Vec<f64>,
    ours: Vec<f64>,
}

impl Pair {
    /// Adds both medians and their ratio; the rounds' own ratios (two runs back to back)
    /// show in the note how much one pair of runs varies on a shared machine.
    fn report(&self, labels: [String; 3], note: &str, section: &mut Section) {
        let mut ratios: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.raw)
            .map(|(o, r)| o / r)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let (raw, ours) = (
            median(&mut self.raw.clone()),
            median(&mut self.ours.clone()),
        );
        let [raw_label, ours_label, ratio_label] = labels;
        section.add(raw_label, per_second(raw), note);
        section.add(ours_label, per_second(ours), note);
        section.add(
            ratio_label,
            format!("{:.2}", ours / raw),
            format!(
                "ratio of the medians; per round {:.2} to {:.2}, median {:.2}; target ≥ 0.9",
                ratios.first().copied().unwrap_or(0.0),
                ratios.last().copied().unwrap_or(0.0),
                median(&mut ratios)
            ),
        );
    }
}

/// Publish and consume, library against raw lapin, interleaved `rounds` times.
pub async fn run(bench: &Bench, count: usize, rounds: usize, section: &mut Section) {
    let job = EncodedJob::encode(&NoopJob::new()).expect("encode");
    let (mut publish, mut consume) = (Pair::default(), Pair::default());
    for round in 0..rounds {
        // Alternate which side goes first, so neither always meets a warmer broker; each
        // publish meets an empty queue, and each consumer a queue of exactly `count` jobs (a
        // fast consumer must not eat into the other's share).
        for raw_first in [round % 2 == 0, round % 2 != 0] {
            bench.purge().await;
            if raw_first {
                publish
                    .raw
                    .push(raw_publish(&bench.raw.channel, &job, count).await);
            } else {
                publish
                    .ours
                    .push(typed_publish(&bench.compared, count).await);
            }
        }
        for raw_first in [round % 2 == 0, round % 2 != 0] {
            bench.purge().await;
            typed_publish(&bench.publisher, count).await;
            if raw_first {
                consume.raw.push(raw_consume(&bench.url, count).await);
            } else {
                consume.ours.push(typed_consume(bench, count).await);
            }
        }
        eprintln!(
            "  round {round}: publish raw {:.0}/s ours {:.0}/s; consume raw {:.0}/s ours {:.0}/s",
            publish.raw[round], publish.ours[round], consume.raw[round], consume.ours[round]
        );
    }
    let note = format!("median of {rounds} interleaved rounds of {count} jobs");
    let labels = |raw: &str, ours: &str, ratio: &str| [raw.into(), ours.into(), ratio.into()];
    publish.report(
        labels(
            "publish: raw lapin, pipelined confirms",
            "publish: typed publisher (publish_batch)",
            "publish ratio (typed / raw)",
        ),
        &note,
        section,
    );
    consume.report(
        labels(
            &format!("consume: raw lapin, manual acks, prefetch {PREFETCH}"),
            "consume: worker runtime, no-op handler",
            "consume ratio (runtime / raw)",
        ),
        &note,
        section,
    );
}
