//! Publish and consume throughput of the library against raw lapin doing the same work on
//! the same broker.
//!
//! The two sides alternate over several repetitions in one run, against one broker URL, so
//! that drift of a shared machine hits both alike; each figure is the median.

use std::collections::VecDeque;
use std::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use rabbitmq_jobs::{
    AmqpSettings, CONTENT_TYPE, Job, Publisher, PublisherSettings, Registry, Topology, Worker,
    WorkerSettings, work_queue,
};
use serde::{Deserialize, Serialize};

use crate::consume;
use crate::cpu::{Run, measured};
use crate::report::{Section, median, per_second};

/// A job that does nothing, padded to about 300 bytes on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoopJob {
    pub pad: String,
    /// When the job was meant to be sent, in µs since the start of a latency run (0 elsewhere).
    pub intended_us: u64,
}

impl Job for NoopJob {
    const KIND: &'static str = "bench_noop";
    const VERSION: u32 = 1;
}

impl NoopJob {
    pub fn new() -> Self {
        Self {
            pad: "x".repeat(150),
            intended_us: 0,
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

/// The envelope as raw lapin code would write it: the same fields as the library's, a fresh
/// id and timestamp per message.
#[derive(Serialize)]
struct RawOutgoing<'a> {
    id: uuid::Uuid,
    kind: &'static str,
    version: u32,
    created_at: chrono::DateTime<chrono::Utc>,
    payload: &'a NoopJob,
}

/// Raw lapin doing what the library does per job: build the job, encode its envelope, set the
/// same properties, publish mandatory; a sliding window of confirms.
async fn raw_publish(channel: &Channel, count: usize) -> f64 {
    let jobs = vec![NoopJob::new(); count];
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let started = Instant::now();
    let mut window = VecDeque::with_capacity(IN_FLIGHT);
    for job in &jobs {
        if window.len() >= IN_FLIGHT {
            check_ack(window.pop_front()).await;
        }
        let id = uuid::Uuid::new_v4();
        let body = serde_json::to_vec(&RawOutgoing {
            id,
            kind: NoopJob::KIND,
            version: NoopJob::VERSION,
            created_at: chrono::Utc::now(),
            payload: job,
        })
        .expect("encode");
        let created = u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970");
        let properties = BasicProperties::default()
            .with_content_type(CONTENT_TYPE.into())
            .with_delivery_mode(2)
            .with_message_id(id.to_string().into())
            .with_type(NoopJob::KIND.into())
            .with_timestamp(created);
        let confirm = channel
            .basic_publish(
                "jobs".into(),
                NoopJob::KIND.into(),
                options,
                &body,
                properties,
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

/// The benchmark's worker: concurrency (and so prefetch) [`PREFETCH`].
pub fn worker_settings(name: &str) -> WorkerSettings {
    WorkerSettings {
        name: name.to_owned(),
        concurrency: PREFETCH,
        ..WorkerSettings::default()
    }
}

/// The worker runtime running in this process until stopped.
pub struct RunningWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// With [`worker_settings`]: concurrency (and prefetch) [`PREFETCH`].
    pub fn start(bench: &Bench, name: &str, registry: Registry) -> Self {
        Self::start_with(bench, worker_settings(name), registry)
    }

    pub fn start_with(bench: &Bench, settings: WorkerSettings, registry: Registry) -> Self {
        let worker = Worker::new(
            bench.amqp.clone(),
            settings,
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

/// One comparison over the rounds: raw lapin's runs and ours, paired by round.
#[derive(Default)]
struct Pair {
    raw: Vec<Run>,
    ours: Vec<Run>,
}

impl Pair {
    fn push(&mut self, raw_side: bool, run: Run) {
        if raw_side {
            self.raw.push(run);
        } else {
            self.ours.push(run);
        }
    }

    fn medians(&self, of: impl Fn(&Run) -> f64) -> (f64, f64) {
        let side = |runs: &[Run]| median(&mut runs.iter().map(&of).collect::<Vec<_>>());
        (side(&self.raw), side(&self.ours))
    }

    /// Both sides' median rates, then the headline: the median of the rounds' own ratios
    /// (each round's two runs are back to back, so drift hits both), with their spread, and
    /// the ratio of the medians beside it.
    fn report(&self, labels: [String; 3], note: &str, section: &mut Section) {
        let mut ratios: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.raw)
            .map(|(o, r)| o.per_second / r.per_second)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let (raw, ours) = self.medians(|run| run.per_second);
        let [raw_label, ours_label, ratio_label] = labels;
        section.add(raw_label, per_second(raw), note);
        section.add(ours_label, per_second(ours), note);
        section.add(
            ratio_label,
            format!("{:.2}", median(&mut ratios)),
            format!(
                "median of the per-round ratios (range {:.2} to {:.2}; ratio of the medians \
                 {:.2}); {note}; target ≥ 0.9",
                ratios.first().copied().unwrap_or(0.0),
                ratios.last().copied().unwrap_or(0.0),
                ours / raw,
            ),
        );
    }

    /// Client CPU per job on both sides (medians over the rounds) and their ratio.
    fn report_cpu(&self, what: &str, target: Option<&str>, section: &mut Section) {
        let (raw, ours) = self.medians(|run| run.cpu_us_per_job);
        let note = "getrusage of the bench process (all its threads) around each timed run";
        section.add(
            format!("{what}: client CPU per job, raw lapin / ours"),
            format!("{raw:.1} / {ours:.1} µs"),
            note,
        );
        section.add(
            format!("{what}: client CPU per job, ours / raw"),
            format!("{:.2}", ours / raw),
            target.map_or_else(|| note.to_owned(), |t| format!("{note}; {t}")),
        );
    }
}

/// Runs `rounds` rounds of one comparison, alternating which side goes first so that neither
/// always meets a warmer broker; `side(raw_side)` prepares and measures one side once.
async fn interleaved<F, Fut>(what: &str, rounds: usize, mut side: F) -> Pair
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Run>,
{
    let mut pair = Pair::default();
    for round in 0..rounds {
        for raw_side in [round % 2 == 0, round % 2 != 0] {
            let run = side(raw_side).await;
            pair.push(raw_side, run);
        }
        let (raw, ours) = (pair.raw[round].per_second, pair.ours[round].per_second);
        eprintln!("  {what} round {round}: raw {raw:.0}/s ours {ours:.0}/s");
    }
    pair
}

/// Publish: every run meets an empty queue.
async fn publish_pair(bench: &Bench, count: usize, rounds: usize) -> Pair {
    interleaved("publish", rounds, |raw_side| async move {
        bench.purge().await;
        if raw_side {
            measured(count, raw_publish(&bench.raw.channel, count)).await
        } else {
            measured(count, typed_publish(&bench.compared, count)).await
        }
    })
    .await
}

/// Consume at `concurrency`: each consumer meets a queue of exactly `count` jobs (a fast
/// consumer must not eat into the other's share), filled before its timer starts.
async fn consume_pair(bench: &Bench, count: usize, rounds: usize, concurrency: u16) -> Pair {
    let what = format!("consume ×{concurrency}");
    interleaved(&what, rounds, |raw_side| async move {
        bench.purge().await;
        typed_publish(&bench.publisher, count).await;
        if raw_side {
            measured(count, consume::raw(&bench.url, count, concurrency)).await
        } else {
            measured(count, consume::runtime(bench, count, concurrency)).await
        }
    })
    .await
}

/// Publish and consume, library against raw lapin, interleaved `rounds` times.
pub async fn run(bench: &Bench, count: usize, rounds: usize, section: &mut Section) {
    let labels = |raw: &str, ours: &str, ratio: &str| [raw.into(), ours.into(), ratio.into()];
    let publish = publish_pair(bench, count, rounds).await;
    publish.report(
        labels(
            "publish: raw lapin, each job built and encoded, pipelined confirms (1,000 in flight)",
            "publish: typed publisher, `publish_batch` (one lane)",
            "publish ratio (typed / raw), batch",
        ),
        &format!("{rounds} interleaved rounds of {count} jobs"),
        section,
    );
    publish.report_cpu("publish", Some("target ≤ 1.10"), section);
    let concurrent = consume_pair(bench, count, rounds, PREFETCH).await;
    concurrent.report(
        labels(
            &format!("consume ×{PREFETCH}: raw lapin, `for_each_concurrent({PREFETCH})`, prefetch {PREFETCH}, parse + ack"),
            &format!("consume ×{PREFETCH}: worker runtime, concurrency {PREFETCH} (prefetch {PREFETCH}), no-op handler"),
            &format!("consume ratio ×{PREFETCH} (runtime / raw)"),
        ),
        &format!("{rounds} interleaved rounds of {count} jobs; timers stop when the last handler returns"),
        section,
    );
    concurrent.report_cpu(&format!("consume ×{PREFETCH}"), None, section);
    let (count, rounds) = (count / 4, rounds.min(5));
    let sequential = consume_pair(bench, count, rounds, 1).await;
    sequential.report(
        labels(
            "consume ×1: raw lapin loop, prefetch 1, parse + ack awaited",
            "consume ×1: worker runtime, concurrency 1 (prefetch 1), no-op handler",
            "consume ratio ×1 (runtime / raw)",
        ),
        &format!(
            "{rounds} interleaved rounds of {count} jobs; timers stop when the last handler returns"
        ),
        section,
    );
}
