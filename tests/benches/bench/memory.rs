//! Peak memory of one worker process draining a backlog: bounded by the prefetch, not by
//! the backlog, so 1,000 and 100,000 waiting jobs cost about the same at each prefetch.

use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use rabbitmq_jobs::{Registry, Worker, work_queue};

use crate::processes::Process;
use crate::report::{Section, per_second};
use crate::throughput::{Bench, NoopJob, PREFETCH, worker_settings};

/// The child-process mode of the benchmark: a worker with a no-op handler, until SIGTERM;
/// `BENCH_PREFETCH` sets its concurrency, and so its prefetch (default [`PREFETCH`]).
pub async fn noop_worker() {
    let url = std::env::var("AMQP_URL").expect("AMQP_URL");
    let amqp = rabbitmq_jobs::AmqpSettings::from_url(&url).expect("AMQP_URL");
    let prefetch =
        std::env::var("BENCH_PREFETCH").map_or(PREFETCH, |p| p.parse().expect("BENCH_PREFETCH"));
    let registry =
        Registry::new().register(|_: NoopJob, _: rabbitmq_jobs::JobContext| async { Ok(()) });
    let worker = Worker::new(
        amqp,
        rabbitmq_jobs::WorkerSettings {
            concurrency: prefetch,
            ..worker_settings("noop-child")
        },
        Default::default(),
        registry,
    )
    .expect("worker");
    worker
        .run(rabbitmq_jobs::shutdown_signal())
        .await
        .expect("noop worker");
}

/// Waits until `queue` has no job ready, polling every 10 ms with a passive declare: the
/// broker's live count (management statistics lag by seconds, too coarse to time a drain).
/// At that moment at most a prefetch's worth may still be in the consumer's hands.
pub async fn wait_drained(url: &str, queue: &str, limit: Duration) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let started = Instant::now();
    loop {
        if queue_counts(&channel, queue).await.0 == 0 {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "{queue} not drained in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = connection.close(200, "drained".into()).await;
}

/// Messages ready and consumers, from a passive declare (the broker's live figures).
pub async fn queue_counts(channel: &Channel, queue: &str) -> (u32, u32) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .expect("passive declare");
    (declared.message_count(), declared.consumer_count())
}

/// Queues `count` jobs and drains them with a child worker at `prefetch`; returns (jobs/s,
/// peak RSS MiB).
async fn drain(bench: &Bench, count: usize, prefetch: u16) -> (f64, f64) {
    bench.purge().await;
    let jobs = vec![NoopJob::new(); 10_000];
    let mut left = count;
    while left > 0 {
        let now = left.min(jobs.len());
        bench
            .publisher
            .publish_batch(&jobs[..now])
            .await
            .expect("backlog");
        left -= now;
    }
    drain_with_noop_worker(bench, count, prefetch).await
}

/// Starts a no-op worker process at `prefetch` (its concurrency) on the queued jobs and times
/// it until the queue is drained (process start-up included); returns (jobs/s, the worker's
/// peak RSS in MiB).
async fn drain_with_noop_worker(bench: &Bench, count: usize, prefetch: u16) -> (f64, f64) {
    let queue = work_queue(<NoopJob as rabbitmq_jobs::Job>::KIND);
    let exe = std::env::current_exe().expect("bench binary");
    let started = Instant::now();
    let child = Process::spawn(
        exe,
        &["noop-worker"],
        &[
            ("AMQP_URL", bench.url.clone()),
            ("RUST_LOG", "warn".into()),
            ("BENCH_PREFETCH", prefetch.to_string()),
        ],
    );
    wait_drained(&bench.url, &queue, Duration::from_secs(900)).await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let peak = child.peak_rss_mib();
    child.stop();
    (rate, peak)
}

/// Peak RSS draining a small and a large backlog, at prefetch 20, 200 and 2,000.
pub async fn run(bench: &Bench, large: usize, section: &mut Section) {
    // At least twice the largest prefetch, so that every worker meets a full prefetch.
    let small = 5_000;
    for prefetch in [20, PREFETCH, 2_000] {
        let (_, small_peak) = drain(bench, small, prefetch).await;
        let (rate, large_peak) = drain(bench, large, prefetch).await;
        let note = format!(
            "one worker process, no-op handler, concurrency and prefetch {prefetch}; drain rate \
             {} including process start-up",
            per_second(rate)
        );
        section.add(
            format!("prefetch {prefetch}: worker peak RSS, {small} / {large} jobs waiting"),
            format!("{small_peak:.1} / {large_peak:.1} MiB"),
            &note,
        );
        section.add(
            format!("prefetch {prefetch}: ratio (large / small backlog)"),
            format!("{:.2}", large_peak / small_peak),
            "≈ 1: bounded by prefetch, not by the backlog",
        );
    }
}
