//! The seed's spike through the real HTTP API: uploads of real JPEGs at a fixed rate (10,000
//! over 60 s) and as fast as the client can, with 1 and with 3 worker processes busy making
//! thumbnails. Response times, queue depth over time, time to drain, and nothing lost.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use support::{Broker, Postgres, wait_until};

use crate::processes::{Process, free_port};
use crate::report::{Section, per_second, quantile};

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
}

/// Starts `$0` as background work: its own session (so its own scheduler autogroup, where the
/// kernel has them) at the lowest weight, and niced within it.
const BACKGROUND: &str = "echo 19 > /proc/$$/autogroup 2>/dev/null; exec nice -n 10 \"$0\"";

/// Where the app's image files go: memory (`/dev/shm`) where there is one. In production the
/// files live on another disk or an object store; on this one-disk machine their writeback
/// (about 2 GB per spike) stalled PostgreSQL's WAL flushes behind it, and every upload waits
/// for one (measured: response p99 160 -> 64 ms with 3 workers).
fn storage_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A running app: producer and workers as processes, on their own vhost and database.
struct Stack {
    base: String,
    vhost: support::Vhost,
    db: sqlx::PgPool,
    producer: Process,
    workers: Vec<Process>,
    dir: PathBuf,
}

async fn start(bin: &Path, broker: &Broker, workers: usize) -> Stack {
    let vhost = broker.vhost("spike").await.expect("vhost");
    let database_url = Postgres::shared()
        .database("spike")
        .await
        .expect("database");
    let dir = storage_root().join(format!("bench-spike-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let env = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("AMQP_URL", vhost.amqp_url.clone()),
            ("DATABASE_URL", database_url.clone()),
            ("STORAGE_DIR", dir.join("storage").display().to_string()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        env.extend_from_slice(extra);
        env
    };
    let producer = Process::spawn(
        bin.join("producer"),
        &["serve"],
        &env(&[("HTTP_ADDR", format!("127.0.0.1:{port}"))]),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_until(
        Duration::from_secs(60),
        "the producer to be ready",
        || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await
    .expect("producer");
    let outbox = ("OUTBOX_DIR", dir.join("outbox").display().to_string());
    // Workers run as background work beside a web tier should: on this one machine they
    // share two cores with the producer, broker and database, and the scheduler should
    // favour the requests a user waits for (in production they are separate machines).
    // `nice` alone does not do it where the kernel groups tasks by session (autogroup): the
    // niced workers would still weigh as much as the broker's whole container.
    let worker = bin.join("worker").display().to_string();
    let workers = (0..workers)
        .map(|n| {
            Process::spawn(
                "setsid".into(),
                &["sh", "-c", BACKGROUND, &worker],
                &env(&[outbox.clone(), ("WORKER_NAME", format!("bench-worker-{n}"))]),
            )
        })
        .collect();
    let db = sqlx::PgPool::connect(&database_url)
        .await
        .expect("bench db");
    Stack {
        base,
        vhost,
        db,
        producer,
        workers,
        dir,
    }
}

impl Stack {
    async fn wait_for_consumers(&self, workers: usize) {
        wait_until(
            Duration::from_secs(60),
            "every worker to consume",
            || async {
                let queues = self
                    .vhost
                    .management
                    .consumed_queues(&self.vhost.name)
                    .await
                    .unwrap_or_default();
                queues
                    .iter()
                    .filter(|q| *q == "jobs.process_thumbnails")
                    .count()
                    >= workers
            },
        )
        .await
        .expect("workers");
    }

    async fn thumbnail_backlog(&self) -> u64 {
        let stats = self
            .vhost
            .management
            .queue(&self.vhost.name, "jobs.process_thumbnails")
            .await
            .unwrap_or_default();
        stats.messages_ready + stats.messages_unacknowledged
    }

    async fn finished(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM image_jobs WHERE kind = 'update_profile_url' AND state = 'done'",
        )
        .fetch_one(&self.db)
        .await
        .unwrap_or(0)
    }
}

/// Sends the uploads; returns accepted count and sorted response times (ms).
async fn upload(base: &str, images: &[Vec<u8>], scenario: &Scenario) -> (usize, Vec<f64>) {
    let http = reqwest::Client::new();
    let send = |n: usize| {
        let (http, url, body) = (
            http.clone(),
            format!("{base}/users/spike{n}/avatar"),
            images[n % images.len()].clone(),
        );
        async move {
            let started = Instant::now();
            let response = http
                .post(url)
                .header("content-type", "image/jpeg")
                .body(body)
                .send()
                .await;
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            (response.is_ok_and(|r| r.status() == 202), millis)
        }
    };
    let results: Vec<(bool, f64)> = match scenario.pace {
        Pace::Flood(in_flight) => {
            stream::iter(0..scenario.uploads)
                .map(send)
                .buffer_unordered(in_flight)
                .collect()
                .await
        }
        Pace::Rate(rate) => {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..scenario.uploads {
                ticks.tick().await;
                tasks.spawn(send(n));
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
    lost: i64,
    producer_peak: f64,
}

/// Runs one scenario and adds its figures under `label`.
pub async fn run(
    bin: &Path,
    broker: &Broker,
    images: &[Vec<u8>],
    scenario: Scenario,
    label: &str,
    section: &mut Section,
) {
    let stack = start(bin, broker, scenario.workers).await;
    stack.wait_for_consumers(scenario.workers).await;
    let outcome = measure(&stack, images, &scenario).await;
    report(&outcome, &scenario, label, section);
    for worker in stack.workers {
        worker.stop();
    }
    stack.producer.stop();
    let _ = std::fs::remove_dir_all(&stack.dir);
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

/// Sends the uploads, then waits for every accepted one to be processed.
async fn measure(stack: &Stack, images: &[Vec<u8>], scenario: &Scenario) -> Outcome {
    let (sampler, depths) = sample_depths(stack);
    let started = Instant::now();
    let (accepted, times) = upload(&stack.base, images, scenario).await;
    let upload_seconds = started.elapsed().as_secs_f64();
    let producer_peak = stack.producer.peak_rss_mib();
    let drain_started = Instant::now();
    let all = i64::try_from(accepted).unwrap_or(i64::MAX);
    let waited = wait_until(
        Duration::from_secs(1800),
        "every accepted upload to be processed",
        || async { stack.finished().await >= all && stack.thumbnail_backlog().await == 0 },
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
        lost: all - stack.finished().await,
        producer_peak,
    }
}

fn report(outcome: &Outcome, scenario: &Scenario, label: &str, section: &mut Section) {
    let note = format!(
        "{} uploads, {} worker process(es)",
        scenario.uploads, scenario.workers
    );
    let times = &outcome.times;
    section.add(
        format!("{label}: accepted"),
        format!("{} of {}", outcome.accepted, scenario.uploads),
        &note,
    );
    section.add(
        format!("{label}: uploads accepted per second"),
        per_second(outcome.accepted as f64 / outcome.upload_seconds),
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
        if matches!(scenario.pace, Pace::Rate(_)) {
            format!("{note}; target p99 < 50 ms")
        } else {
            note.clone()
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
        outcome.lost.to_string(),
        "accepted uploads not processed",
    );
    section.add(
        format!("{label}: producer peak RSS"),
        format!("{:.1} MiB", outcome.producer_peak),
        "VmHWM",
    );
}
