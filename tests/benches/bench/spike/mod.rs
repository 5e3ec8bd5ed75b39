//! The seed's spike through the real HTTP API, on the settings compose.yaml ships: uploads
//! of real JPEGs at a fixed rate (10,000 over 60 s) and as fast as a client with a stated
//! number of requests in flight can, with 1 and with 3 worker processes busy. Response times
//! from each request's intended send time, queue depth over time, time to drain, every job
//! of every upload done (mails included), and the processes' peak memory.

pub mod stack;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use support::{Broker, wait_until};

use crate::report::{Section, per_second, quantile};
use stack::{JOBS_PER_UPLOAD, Stack};

/// How the uploads arrive.
#[derive(Clone, Copy)]
pub enum Pace {
    /// This many per second, whatever the answers' speed.
    Rate(f64),
    /// Back to back with this many in flight.
    Flood(usize),
}

pub struct Scenario {
    pub workers: usize,
    pub uploads: usize,
    pub pace: Pace,
    /// Whether the response target applies (the seed's rate).
    pub target: bool,
}

/// Sends the uploads; returns the accepted count and the sorted response times (ms), each
/// timed from when the request was due (at a fixed rate: its slot in the schedule, however
/// late the client sent it; flat out: when a slot in flight freed up).
async fn upload(base: &str, images: &[Vec<u8>], scenario: &Scenario) -> (usize, Vec<f64>) {
    let http = reqwest::Client::new();
    let send = |n: usize, due: Instant| {
        let (http, url, body) = (
            http.clone(),
            format!("{base}/users/spike{n}/avatar"),
            images[n % images.len()].clone(),
        );
        async move {
            let response = http
                .post(url)
                .header("content-type", "image/jpeg")
                .body(body)
                .send()
                .await;
            let millis = due.elapsed().as_secs_f64() * 1000.0;
            (response.is_ok_and(|r| r.status() == 202), millis)
        }
    };
    let results: Vec<(bool, f64)> = match scenario.pace {
        Pace::Flood(in_flight) => {
            stream::iter(0..scenario.uploads)
                .map(|n| send(n, Instant::now()))
                .buffer_unordered(in_flight)
                .collect()
                .await
        }
        Pace::Rate(rate) => {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            let start = Instant::now();
            for n in 0..scenario.uploads {
                ticks.tick().await;
                tasks.spawn(send(n, start + Duration::from_secs_f64(n as f64 / rate)));
            }
            tasks.join_all().await
        }
    };
    let accepted = results.iter().filter(|(ok, _)| *ok).count();
    let mut times: Vec<f64> = results.into_iter().map(|(_, ms)| ms).collect();
    times.sort_by(f64::total_cmp);
    (accepted, times)
}

/// What one scenario measured.
struct Outcome {
    accepted: usize,
    /// Sorted response times, ms.
    times: Vec<f64>,
    upload_seconds: f64,
    /// (seconds since the first upload, thumbnail backlog)
    depths: Vec<(u64, u64)>,
    drain_seconds: f64,
    drained: bool,
    /// Jobs of accepted uploads not done (all four of each).
    lost_jobs: i64,
    mails: usize,
    producer_peak: f64,
    worker_peak: f64,
}

/// Runs one scenario and adds its figures under `label`; returns the uploads accepted per
/// second.
pub async fn run(
    bin: &Path,
    broker: &Broker,
    images: &[Vec<u8>],
    scenario: Scenario,
    label: &str,
    section: &mut Section,
) -> f64 {
    let stack = stack::start(bin, broker, scenario.workers).await;
    stack.wait_for_consumers(scenario.workers).await;
    let outcome = measure(&stack, images, &scenario).await;
    report(&outcome, &scenario, label, section);
    outcome.accepted as f64 / outcome.upload_seconds
}

/// (seconds since the first upload, thumbnail backlog), shared with the sampling task.
type Depths = Arc<Mutex<Vec<(u64, u64)>>>;

/// Samples the thumbnail backlog every 5 s until aborted.
fn sample_depths(stack: &Stack) -> (tokio::task::JoinHandle<()>, Depths) {
    let depths = Arc::new(Mutex::new(Vec::new()));
    let (sink, started) = (Arc::clone(&depths), Instant::now());
    let (management, vhost) = (stack.vhost.management.clone(), stack.vhost.name.clone());
    let sampler = tokio::spawn(async move {
        loop {
            let stats = management
                .queue(&vhost, "jobs.process_thumbnails")
                .await
                .unwrap_or_default();
            let depth = stats.messages_ready + stats.messages_unacknowledged;
            sink.lock()
                .expect("depths")
                .push((started.elapsed().as_secs(), depth));
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    (sampler, depths)
}

/// Sends the uploads, then waits for every job of every accepted one to be done.
async fn measure(stack: &Stack, images: &[Vec<u8>], scenario: &Scenario) -> Outcome {
    let (sampler, depths) = sample_depths(stack);
    let started = Instant::now();
    let (accepted, times) = upload(&stack.base, images, scenario).await;
    let upload_seconds = started.elapsed().as_secs_f64();
    let producer_peak = stack.producer.peak_rss_mib();
    let drain_started = Instant::now();
    let all = i64::try_from(accepted).unwrap_or(i64::MAX) * JOBS_PER_UPLOAD;
    let waited = wait_until(
        Duration::from_secs(1800),
        "every job of every accepted upload to be done",
        || async { stack.jobs_done().await >= all && stack.thumbnail_backlog().await == 0 },
    )
    .await;
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    sampler.abort();
    let depths = depths.lock().expect("depths").clone();
    Outcome {
        accepted,
        times,
        upload_seconds,
        depths,
        drain_seconds,
        drained: waited.is_ok(),
        lost_jobs: all - stack.jobs_done().await,
        mails: stack.volume.count_files("/data/outbox"),
        producer_peak,
        worker_peak: stack.worker_peak_rss(),
    }
}

fn report(outcome: &Outcome, scenario: &Scenario, label: &str, section: &mut Section) {
    let note = format!(
        "{} uploads, {} worker(s) as compose.yaml ships them",
        scenario.uploads, scenario.workers
    );
    let times = &outcome.times;
    section.add(
        format!("{label}: accepted, per second"),
        format!(
            "{} of {}, {}",
            outcome.accepted,
            scenario.uploads,
            per_second(outcome.accepted as f64 / outcome.upload_seconds)
        ),
        &note,
    );
    section.add(
        format!("{label}: response p50 / p99 / max"),
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            quantile(times, 0.5),
            quantile(times, 0.99),
            times.last().copied().unwrap_or(0.0)
        ),
        match scenario.pace {
            Pace::Rate(_) if scenario.target => {
                format!("{note}; from each request's due time; target p99 < 50 ms")
            }
            Pace::Rate(_) => format!("{note}; from each request's due time"),
            Pace::Flood(_) => format!("{note}; closed loop, from each request's send"),
        },
    );
    let depth_text: Vec<String> = outcome
        .depths
        .iter()
        .map(|(t, d)| format!("{t}s:{d}"))
        .collect();
    section.add(
        format!("{label}: thumbnail queue depth over time"),
        depth_text.join(" "),
        "ready + unacked, every 5 s",
    );
    section.add(
        format!("{label}: time to drain after the last upload"),
        format!("{:.1} s", outcome.drain_seconds),
        if outcome.drained { "" } else { "TIMED OUT" },
    );
    section.add(
        format!("{label}: lost"),
        format!(
            "{} jobs; {} mails for {} uploads",
            outcome.lost_jobs, outcome.mails, outcome.accepted
        ),
        "jobs of accepted uploads not done (thumbnails, moderation, mail, profile: 4 each)",
    );
    section.add(
        format!("{label}: peak RSS, producer / largest worker"),
        format!(
            "{:.1} / {:.1} MiB",
            outcome.producer_peak, outcome.worker_peak
        ),
        "VmHWM of the app processes",
    );
}
