//! Publish-to-handler latency, at half the end-to-end capacity (publishing and handling at
//! once on the one broker) and at a web app's everyday pace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::{JobContext, Publisher, Registry};

use crate::report::{Section, per_second, quantile};
use crate::throughput::{Bench, NoopJob, RunningWorker, typed_consume};

/// End-to-end capacity: jobs published and handled per second with both running at once on
/// the one broker (each side alone is faster; together they share its cores).
pub async fn sustained(bench: &Bench, count: usize, section: &mut Section) -> f64 {
    bench.purge().await;
    let publishing = async {
        let jobs = vec![NoopJob::new(); count];
        bench
            .publisher
            .publish_batch(&jobs)
            .await
            .expect("typed publish");
    };
    let (rate, ()) = tokio::join!(typed_consume(bench, count), publishing);
    section.add(
        "end to end: published and handled at once",
        per_second(rate),
        format!("{count} jobs, worker runtime running while they are published"),
    );
    rate
}

/// Publishes `total` jobs at `rate` per second, each on its own; returns the rate achieved.
async fn publish_at(publisher: &Publisher, rate: f64, total: usize) -> f64 {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut publishes = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..total {
        ticks.tick().await;
        let publisher = publisher.clone();
        publishes.spawn(async move { publisher.publish(&NoopJob::new()).await.map(drop) });
    }
    while let Some(result) = publishes.join_next().await {
        result.expect("publish task").expect("publish");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Publish-to-handler latency at `rate` jobs/s for `duration`, each job published on its
/// own (as web requests do) and timed from its envelope's `created_at` to its handler.
pub async fn at_rate(
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
    let worker = RunningWorker::start(bench, "latency", registry);
    let total = (rate * duration.as_secs_f64()) as usize;
    let achieved = publish_at(&bench.publisher, rate, total).await;
    support::wait_until(
        Duration::from_secs(60),
        "every latency job handled",
        || async { samples.lock().expect("samples").len() >= total },
    )
    .await
    .expect("latency run");
    worker.stop().await;
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
