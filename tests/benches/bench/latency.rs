//! Publish-to-handler latency against load: the end-to-end capacity of the per-job publish
//! path (each job its own `publish`, as web requests do, while the runtime handles them),
//! then a curve at 25 / 50 / 75 / 90 % of it and at a web app's everyday pace.
//!
//! Each job is timed from its *intended* send time (the schedule's, not when the client got
//! round to it), so a stalled client cannot hide the wait (no coordinated omission).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use rabbitmq_jobs::{JobContext, Publisher, Registry};

use crate::report::{Section, median, per_second, quantile};
use crate::throughput::{Bench, NoopJob, RunningWorker};

/// Jobs published at once while measuring capacity: the per-job path, many requests at once.
const CAPACITY_IN_FLIGHT: usize = 1_000;

/// A worker that records each job's delay after its intended send time (ms) in `samples`.
fn recording_worker(
    bench: &Bench,
    origin: Instant,
    samples: &Arc<Mutex<Vec<f64>>>,
) -> RunningWorker {
    let sink = Arc::clone(samples);
    let registry = Registry::new().register(move |job: NoopJob, _: JobContext| {
        let sink = Arc::clone(&sink);
        async move {
            let waited = origin
                .elapsed()
                .saturating_sub(Duration::from_micros(job.intended_us));
            sink.lock()
                .expect("samples")
                .push(waited.as_secs_f64() * 1000.0);
            Ok(())
        }
    });
    RunningWorker::start(bench, "latency", registry)
}

async fn wait_for(samples: &Mutex<Vec<f64>>, total: usize) {
    support::wait_until(
        Duration::from_secs(120),
        "every latency job handled",
        || async { samples.lock().expect("samples").len() >= total },
    )
    .await
    .expect("latency run");
}

/// Jobs published (each on its own, many at once) and handled per second, both at once.
async fn capacity_once(bench: &Bench, count: usize) -> f64 {
    bench.purge().await;
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let origin = Instant::now();
    let worker = recording_worker(bench, origin, &samples);
    let started = Instant::now();
    stream::iter(0..count)
        .map(|_| async { bench.publisher.publish(&NoopJob::new()).await.map(drop) })
        .buffer_unordered(CAPACITY_IN_FLIGHT)
        .for_each(|published| async { published.expect("publish") })
        .await;
    wait_for(&samples, count).await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    worker.stop().await;
    rate
}

/// The median of three capacity runs.
pub async fn capacity(bench: &Bench, count: usize, section: &mut Section) -> f64 {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(capacity_once(bench, count).await);
    }
    let text: Vec<String> = runs.iter().map(|r| per_second(*r)).collect();
    let rate = median(&mut runs);
    section.add(
        "end-to-end capacity, per-job publish",
        per_second(rate),
        format!(
            "median of 3 runs ({}): {count} jobs, each its own `publish`, {CAPACITY_IN_FLIGHT} at once, \
             while the runtime (concurrency 200) handles them",
            text.join(", ")
        ),
    );
    rate
}

/// Publishes `total` jobs on schedule at `rate` per second, each on its own and stamped with
/// its intended send time; returns the rate achieved.
async fn publish_at(publisher: &Publisher, origin: Instant, rate: f64, total: usize) -> f64 {
    let begin = origin.elapsed();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut publishes = tokio::task::JoinSet::new();
    for n in 0..total {
        ticks.tick().await;
        let intended = begin + Duration::from_secs_f64(n as f64 / rate);
        let job = NoopJob {
            intended_us: u64::try_from(intended.as_micros()).unwrap_or(u64::MAX),
            ..NoopJob::new()
        };
        let publisher = publisher.clone();
        publishes.spawn(async move { publisher.publish(&job).await.map(drop) });
    }
    while let Some(result) = publishes.join_next().await {
        result.expect("publish task").expect("publish");
    }
    total as f64 / (origin.elapsed() - begin).as_secs_f64()
}

/// Latency at `rate` jobs/s for `duration`, from each job's intended send time to its handler.
pub async fn at_rate(
    bench: &Bench,
    rate: f64,
    duration: Duration,
    label: &str,
    section: &mut Section,
) {
    bench.purge().await;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let origin = Instant::now();
    let worker = recording_worker(bench, origin, &samples);
    let total = (rate * duration.as_secs_f64()) as usize;
    let achieved = publish_at(&bench.publisher, origin, rate, total).await;
    wait_for(&samples, total).await;
    worker.stop().await;
    let mut sorted = samples.lock().expect("samples").clone();
    sorted.sort_by(f64::total_cmp);
    section.add(
        format!("latency at {label} ({rate:.0}/s): p50 / p99 / max"),
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.99),
            sorted.last().copied().unwrap_or(0.0)
        ),
        format!(
            "{total} jobs on schedule, each its own `publish`, sent at {achieved:.0}/s; \
             runtime concurrency 200; from intended send time to handler"
        ),
    );
}
