//! Celery on the same broker, in the same run, like for like: no-op jobs (persistent, to a
//! quorum queue on both sides, no priority) published and drained, with Celery's defaults
//! (no publisher confirms, ack before running) and with this project's guarantees
//! (`confirm_publish`, `task_acks_late`, `task_reject_on_worker_lost`).
//!
//! - Sequential publish: our `publish().await` one at a time against `delay()` one at a time.
//! - Batch publish: our `publish_batch` (one connection, 1,000 confirms in flight) against
//!   Celery's best of 2, 4 and 8 concurrent publisher processes, started together once
//!   connected and timed from the first start to the last end.
//! - Drain: a worker process each, at the same prefetch (200; Celery's multiplier ×
//!   concurrency), Celery's best pool of `solo`, `threads` and `prefork -c 2`, start-up
//!   excluded the same way on both sides (see [`timing`]).
//!
//! The sides alternate over [`ROUNDS`] rounds; every figure is the median of its rounds.

mod python_side;
mod timing;

use std::time::Instant;

use rabbitmq_jobs::{Publisher, work_queue};

use crate::processes::Process;
use crate::python;
use crate::report::{Section, median, per_second};
use crate::throughput::{Bench, NoopJob, PREFETCH, connect_publisher};
use python_side::{Celery, POOLS};

const ROUNDS: usize = 3;
/// Celery's concurrent publisher processes; the best is reported.
const PUBLISHERS: [usize; 3] = [2, 4, 8];

/// One side's rates over the rounds; `batch` and `drain` hold one list per variant
/// (Celery: per publisher count and per pool; ours: one).
#[derive(Default)]
struct Side {
    sequential: Vec<f64>,
    batch: Vec<Vec<f64>>,
    drain: Vec<Vec<f64>>,
}

impl Side {
    fn push(variants: &mut Vec<Vec<f64>>, variant: usize, rate: f64) {
        if variants.len() <= variant {
            variants.resize(variant + 1, Vec::new());
        }
        variants[variant].push(rate);
    }

    /// The best variant's index and median.
    fn best(variants: &[Vec<f64>]) -> (usize, f64) {
        variants
            .iter()
            .map(|rates| median(&mut rates.clone()))
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    }
}

/// Our side's publishers, each on its own long-lived connection used for nothing else.
struct Ours {
    sequential: Publisher,
    batch: Publisher,
}

/// Job counts: `count` for batch publish and drain, fewer for sequential publish.
#[derive(Clone, Copy)]
struct Counts {
    count: usize,
    sequential: usize,
}

async fn ours_round(bench: &Bench, ours: &Ours, counts: Counts, side: &mut Side) {
    bench.purge().await;
    let job = NoopJob::new();
    let started = Instant::now();
    for _ in 0..counts.sequential {
        ours.sequential.publish(&job).await.expect("publish");
    }
    side.sequential
        .push(counts.sequential as f64 / started.elapsed().as_secs_f64());
    bench.purge().await;
    let jobs = vec![NoopJob::new(); counts.count];
    let started = Instant::now();
    ours.batch
        .publish_batch(&jobs)
        .await
        .expect("publish_batch");
    Side::push(
        &mut side.batch,
        0,
        counts.count as f64 / started.elapsed().as_secs_f64(),
    );
    let queue = work_queue(<NoopJob as rabbitmq_jobs::Job>::KIND);
    let exe = std::env::current_exe().expect("bench binary");
    let env = [("AMQP_URL", bench.url.clone()), ("RUST_LOG", "warn".into())];
    let start = || Process::spawn(exe, &["noop-worker"], &env);
    let rate = timing::drain(&bench.url, &queue, counts.count, start).await;
    Side::push(&mut side.drain, 0, rate);
}

async fn celery_round(celery: &Celery, counts: Counts, side: &mut Side) -> Result<(), String> {
    let queue = celery.queue();
    timing::purge(&celery.url, &queue).await;
    side.sequential.push(celery.publish(1, counts.sequential)?);
    // Each pool drains the backlog of a publish: timed for the first pools, one per
    // publisher count, and untimed (4 processes) for the last.
    for (variant, pool) in POOLS.iter().enumerate() {
        timing::purge(&celery.url, &queue).await;
        let processes = PUBLISHERS.get(variant);
        let rate = celery.publish(processes.copied().unwrap_or(4), counts.count)?;
        if processes.is_some() {
            Side::push(&mut side.batch, variant, rate);
        }
        let start = || celery.worker(pool);
        let rate = timing::drain(&celery.url, &queue, counts.count, start).await;
        Side::push(&mut side.drain, variant, rate);
    }
    Ok(())
}

/// Celery's two configurations: (mode, label, what its `delay()` waits for, when it acks,
/// what a sequential publish that waits for each confirm cannot beat).
const MODES: [(&str, &str, &str, &str, &str); 2] = [
    (
        "safe",
        "equal guarantees",
        "each waits for its publish confirm",
        "acks after the task",
        "",
    ),
    (
        "defaults",
        "its defaults",
        "no publisher confirms: none waits",
        "acks before the task",
        SEQUENTIAL_MISS,
    ),
];

/// Why our sequential publish trails Celery's defaults. Profiled with a bare py-amqp
/// client on the same broker: waiting for the confirm costs several times a publish's own
/// time on a quorum queue (which confirms once it has written the job), far less on a
/// classic one; ours, one at a time, is mostly that wait.
const SEQUENTIAL_MISS: &str = ". Missed: one at a time, each of ours waits for its \
     confirm, which the broker sends once the quorum queue has written the job, and that \
     wait is most of its time; Celery's defaults send and go on. The gap is the confirm, a \
     guarantee Celery's defaults do not give (with it, `delay()` is slower than ours, the \
     row with equal guarantees); batched, ours is far ahead";

pub async fn run(bench: &Bench, vhost: &support::Vhost, count: usize, section: &mut Section) {
    let python = match python::interpreter() {
        Ok(python) => python,
        Err(reason) => return section.add("Celery baseline", "skipped", reason),
    };
    let ours = Ours {
        sequential: connect_publisher(&bench.amqp, 1).await,
        batch: connect_publisher(&bench.amqp, 1).await,
    };
    let counts = Counts {
        count,
        sequential: count / 4,
    };
    let celeries = MODES.map(|(mode, ..)| Celery {
        python: python.clone(),
        url: vhost.amqp_url.clone(),
        mode,
    });
    let mut our_side = Side::default();
    let mut sides: [Result<Side, String>; 2] = [Ok(Side::default()), Ok(Side::default())];
    for round in 0..ROUNDS {
        eprintln!("  round {round}");
        ours_round(bench, &ours, counts, &mut our_side).await;
        for (celery, side) in celeries.iter().zip(&mut sides) {
            if let Ok(rates) = side
                && let Err(error) = celery_round(celery, counts, rates).await
            {
                *side = Err(error);
            }
        }
    }
    report_ours(&our_side, counts, section);
    for ((_, label, publish, ack, sequential_miss), side) in MODES.iter().zip(&sides) {
        let conditions = Conditions {
            label,
            publish,
            ack,
            sequential_miss,
            counts,
        };
        match side {
            Ok(celery) => {
                report_publish(&our_side, celery, &conditions, section);
                report_drain(&our_side, celery, &conditions, section);
            }
            Err(error) => section.add(format!("Celery, {label}"), "failed", error),
        }
    }
}

fn report_ours(ours: &Side, counts: Counts, section: &mut Section) {
    let tail = format!("persistent no-op jobs to a quorum queue, median of {ROUNDS} rounds");
    section.add(
        "ours: publish, sequential (`publish().await` one at a time)",
        per_second(median(&mut ours.sequential.clone())),
        format!(
            "{} jobs; each waits for its confirm; {tail}",
            counts.sequential
        ),
    );
    section.add(
        "ours: publish, batch (`publish_batch`, one connection)",
        per_second(Side::best(&ours.batch).1),
        format!("{} jobs; 1,000 confirms in flight; {tail}", counts.count),
    );
    section.add(
        format!("ours: drain, one worker process, {PREFETCH} jobs at once"),
        per_second(Side::best(&ours.drain).1),
        format!(
            "{} jobs; prefetch {PREFETCH}, acks after the handler, start-up excluded; {tail}",
            counts.count
        ),
    );
}

/// What a Celery configuration's rows say of it.
struct Conditions<'a> {
    label: &'a str,
    publish: &'a str,
    ack: &'a str,
    /// Appended to the sequential ratio's note when it is under 1 (empty: say nothing more).
    sequential_miss: &'a str,
    counts: Counts,
}

const TAIL: &str = "persistent, quorum queue, no priority, no-op jobs";

/// Appended to the note of a ratio under its target.
const MISSED: &str = ". Missed";

fn ratio(ours: f64, theirs: f64) -> String {
    format!("{:.1}×", ours / theirs)
}

/// [`MISSED`] when `ours` is under `times` `theirs`.
fn missed(ours: f64, theirs: f64, times: f64) -> &'static str {
    if ours < theirs * times { MISSED } else { "" }
}

fn report_publish(ours: &Side, celery: &Side, c: &Conditions, section: &mut Section) {
    let (label, tail) = (c.label, TAIL);
    let sequential = median(&mut celery.sequential.clone());
    section.add(
        format!("Celery, {label}: publish, sequential (`delay()` one at a time)"),
        per_second(sequential),
        format!(
            "{} tasks, one process; {}; {tail}",
            c.counts.sequential, c.publish
        ),
    );
    let batches: Vec<String> = PUBLISHERS
        .iter()
        .zip(&celery.batch)
        .map(|(n, rates)| format!("{n}: {}", per_second(median(&mut rates.clone()))))
        .collect();
    let (best, batch) = Side::best(&celery.batch);
    let processes = PUBLISHERS[best];
    section.add(
        format!("Celery, {label}: publish, {processes} concurrent processes"),
        per_second(batch),
        format!(
            "{} tasks, `delay()` one at a time in each; {}; best of {}; {tail}",
            c.counts.count,
            c.publish,
            batches.join(", ")
        ),
    );
    let ours_sequential = median(&mut ours.sequential.clone());
    let miss = match (ours_sequential < sequential, c.sequential_miss) {
        (false, _) => "",
        (true, "") => MISSED,
        (true, cause) => cause,
    };
    section.add(
        format!("sequential publish vs Celery, {label}: one at a time, one process each"),
        ratio(ours_sequential, sequential),
        format!(
            "target > 1×; ours waits for each confirm, Celery's {}; {tail}{miss}",
            c.publish
        ),
    );
    section.add(
        format!(
            "batch publish vs Celery, {label}: `publish_batch` (one connection) vs \
             {processes} concurrent `delay()` processes"
        ),
        ratio(Side::best(&ours.batch).1, batch),
        format!(
            "target ≥ 3×; Celery's best of 2, 4, 8 processes; {}; {tail}{}",
            c.publish,
            missed(Side::best(&ours.batch).1, batch, 3.0)
        ),
    );
}

fn report_drain(ours: &Side, celery: &Side, c: &Conditions, section: &mut Section) {
    let (label, tail) = (c.label, TAIL);
    for (pool, rates) in POOLS.iter().zip(&celery.drain) {
        section.add(
            format!("Celery, {label}: drain, pool {}", pool.label),
            per_second(median(&mut rates.clone())),
            format!(
                "{} tasks; prefetch {} × {} = {PREFETCH}, {}, start-up excluded; {tail}",
                c.counts.count,
                pool.multiplier(),
                pool.concurrency,
                c.ack
            ),
        );
    }
    let (best_pool, drain) = Side::best(&celery.drain);
    section.add(
        format!(
            "drain vs Celery, {label}: one worker process each, ours vs pool {}",
            POOLS[best_pool].label
        ),
        ratio(Side::best(&ours.drain).1, drain),
        format!(
            "target ≥ 3×; prefetch {PREFETCH} each, 2 cores, Celery {}, its best pool of \
             solo, threads ×4/×8, prefork ×2; start-up excluded; {tail}{}",
            c.ack,
            missed(Side::best(&ours.drain).1, drain, 3.0)
        ),
    );
}
