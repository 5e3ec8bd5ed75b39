//! Peak memory of one worker process draining a backlog: bounded by the prefetch, not by
//! the backlog, so 1,000 and 100,000 waiting jobs cost about the same.

use std::time::{Duration, Instant};

use shared::{Registry, Worker, work_queue};
use support::wait_until;

use crate::processes::Process;
use crate::report::{Section, per_second};
use crate::throughput::{Bench, NoopJob, PREFETCH, worker_settings};

/// The child-process mode of the benchmark: a worker with a no-op handler, until SIGTERM.
pub async fn noop_worker() {
    let url = std::env::var("AMQP_URL").expect("AMQP_URL");
    let amqp = shared::AmqpSettings::from_url(&url).expect("AMQP_URL");
    let registry = Registry::new().register(|_: NoopJob, _: shared::JobContext| async { Ok(()) });
    let worker = Worker::new(
        amqp,
        worker_settings("noop-child"),
        Default::default(),
        registry,
    )
    .expect("worker");
    worker
        .run(shared::shutdown_signal())
        .await
        .expect("noop worker");
}

/// Nothing ready and nothing unacked (management statistics, refreshed every 500 ms here).
pub async fn backlog_empty(vhost: &support::Vhost, queue: &str) -> bool {
    let stats = vhost.management.queue(&vhost.name, queue).await;
    stats.is_ok_and(|s| s.messages_ready == 0 && s.messages_unacknowledged == 0)
}

/// Drains `count` jobs with a child worker; returns (peak RSS MiB, jobs/s).
async fn drain(bench: &Bench, vhost: &support::Vhost, count: usize) -> (f64, f64) {
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
    let queue = work_queue(<NoopJob as shared::Job>::KIND);
    let want = u64::try_from(count).unwrap_or(u64::MAX);
    wait_until(
        Duration::from_secs(60),
        "the statistics to show the backlog",
        || async {
            vhost
                .management
                .queue(&vhost.name, &queue)
                .await
                .is_ok_and(|s| s.messages_ready >= want)
        },
    )
    .await
    .expect("backlog in the statistics");
    let exe = std::env::current_exe().expect("bench binary");
    let started = Instant::now();
    let child = Process::spawn(
        exe,
        &["noop-worker"],
        &[("AMQP_URL", bench.url.clone()), ("RUST_LOG", "warn".into())],
    );
    wait_until(Duration::from_secs(900), "the backlog to drain", || {
        backlog_empty(vhost, &queue)
    })
    .await
    .expect("drain");
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let peak = child.peak_rss_mib();
    child.stop();
    (peak, rate)
}

pub async fn run(bench: &Bench, vhost: &support::Vhost, large: usize, section: &mut Section) {
    let small = 1_000;
    let (small_peak, _) = drain(bench, vhost, small).await;
    let (large_peak, rate) = drain(bench, vhost, large).await;
    let note = format!("one worker process, no-op handler, prefetch {PREFETCH}");
    section.add(
        format!("worker peak RSS draining {small} jobs"),
        format!("{small_peak:.1} MiB"),
        &note,
    );
    section.add(
        format!("worker peak RSS draining {large} jobs"),
        format!("{large_peak:.1} MiB"),
        &note,
    );
    section.add(
        "ratio (large / small backlog)",
        format!("{:.2}", large_peak / small_peak),
        "≈ 1: bounded by prefetch",
    );
    section.add(
        format!("drain rate, {large} jobs"),
        per_second(rate),
        "including process start-up",
    );
}
