//! Celery on the same broker, in the same run: no-op tasks published and drained, with
//! Celery's defaults (no publisher confirms, ack before running) and with the guarantees of
//! this project (`confirm_publish`, `task_acks_late`), against the project's no-op jobs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::memory::{drain_with_noop_worker, wait_drained};
use crate::processes::Process;
use crate::python;
use crate::report::{Section, per_second};
use crate::throughput::{Bench, NoopJob};

/// Celery's worker pool for a no-op drain: threads (no inter-process hand-off), 4 of them.
const POOL: [&str; 4] = ["--pool", "threads", "--concurrency", "4"];

struct Rates {
    publish: f64,
    drain: f64,
}

async fn celery(
    python: &PathBuf,
    vhost: &support::Vhost,
    mode: &str,
    count: usize,
) -> Result<Rates, String> {
    let queue = format!("celery_{mode}");
    let env = [
        ("CELERY_BROKER_URL", vhost.amqp_url.clone()),
        ("CELERY_MODE", mode.to_owned()),
        ("CELERY_QUEUE", queue.clone()),
    ];
    let args: Vec<String> = ["celery_baseline.py", "publish", "--count"]
        .iter()
        .map(|s| s.to_string())
        .chain([count.to_string()])
        .collect();
    let lines = python::run_json(python, &args, &env)?;
    let publish = lines
        .first()
        .and_then(|l| l["per_second"].as_f64())
        .ok_or("no publish rate")?;
    let mut worker_args = vec![
        "-m",
        "celery",
        "-A",
        "celery_baseline",
        "worker",
        "--queues",
        &queue,
        "--loglevel",
        "WARNING",
    ];
    worker_args.extend([
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]);
    worker_args.extend(POOL);
    let started = Instant::now();
    let worker = Process::spawn_in(python.clone(), &worker_args, &env, python::scripts());
    wait_drained(&vhost.amqp_url, &queue, Duration::from_secs(900)).await;
    let drain = count as f64 / started.elapsed().as_secs_f64();
    worker.stop();
    Ok(Rates { publish, drain })
}

async fn ours(bench: &Bench, count: usize) -> Rates {
    bench.purge().await;
    let jobs = vec![NoopJob::new(); count];
    let started = Instant::now();
    bench.publisher.publish_batch(&jobs).await.expect("publish");
    let publish = count as f64 / started.elapsed().as_secs_f64();
    let (drain, _) = drain_with_noop_worker(bench, count).await;
    Rates { publish, drain }
}

pub async fn run(bench: &Bench, vhost: &support::Vhost, count: usize, section: &mut Section) {
    let python = match python::interpreter() {
        Ok(python) => python,
        Err(reason) => return section.add("Celery baseline", "skipped", reason),
    };
    let ours = ours(bench, count).await;
    let note = format!("{count} no-op jobs, same broker; drain includes worker start-up");
    section.add(
        "ours: publish (confirms, persistent, mandatory)",
        per_second(ours.publish),
        &note,
    );
    section.add(
        "ours: drain (one worker process, acks after the handler)",
        per_second(ours.drain),
        &note,
    );
    for (mode, label, publish_target, drain_target) in [
        ("safe", "same guarantees", 10.0, 5.0),
        ("defaults", "its defaults", 3.0, 3.0),
    ] {
        match celery(&python, vhost, mode, count).await {
            Ok(celery) => {
                section.add(
                    format!("Celery, {label}: publish"),
                    per_second(celery.publish),
                    &note,
                );
                section.add(
                    format!("Celery, {label}: drain (threads ×4)"),
                    per_second(celery.drain),
                    &note,
                );
                section.add(
                    format!("publish ratio vs Celery, {label}"),
                    format!("{:.1}×", ours.publish / celery.publish),
                    format!("target ≥ {publish_target}×"),
                );
                section.add(
                    format!("drain ratio vs Celery, {label}"),
                    format!("{:.1}×", ours.drain / celery.drain),
                    format!("target ≥ {drain_target}×"),
                );
            }
            Err(error) => section.add(format!("Celery, {label}"), "failed", error),
        }
    }
}
