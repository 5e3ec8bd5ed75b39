//! The benchmark: `cargo bench -p integration-tests`. Prints the figures and writes them to
//! BENCHMARKS.md. Every comparison is measured in this run, against the same broker.
//! `BENCH_QUICK=1` runs a short version (a smoke test of the benchmark itself).

// A benchmark reports on stdout and stops at the first broken expectation.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

mod celery;
mod consume;
mod containers;
mod cpu;
mod latency;
mod memory;
mod orders;
mod outbox;
mod processes;
mod python;
mod report;
mod spike;
mod throughput;
mod thumbnails;

use std::time::Duration;

use support::Broker;

use report::Section;

#[tokio::main]
async fn main() {
    if std::env::args().any(|arg| arg == "noop-worker") {
        return memory::noop_worker().await;
    }
    if std::env::args().any(|arg| arg == thumbnails::CHILD_ARG) {
        return thumbnails::child();
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let broker = Broker::dedicated().await.expect("starting RabbitMQ");
    let vhost = broker.vhost("bench").await.expect("vhost");
    let bench = throughput::Bench::new(&vhost.amqp_url).await;
    let mut sections = Vec::new();
    if wanted("throughput") {
        eprintln!("==> throughput: library vs raw lapin");
        sections.push(throughput_section(&bench, quick).await);
    }
    if wanted("thumbnails") {
        eprintln!("==> thumbnails: ours vs Pillow");
        let mut section = Section::new("Thumbnails: the worker's hot path against Pillow");
        let (seconds, rounds) = if quick { (0.5, 5) } else { (3.0, 7) };
        thumbnails::run(seconds, rounds, &mut section);
        sections.push(section);
    }
    if wanted("memory") {
        eprintln!("==> memory of a worker draining a backlog");
        let mut section = Section::new("Memory: one worker draining a backlog");
        let backlog = if quick { 20_000 } else { 100_000 };
        memory::run(&bench, backlog, &mut section).await;
        sections.push(section);
    }
    if wanted("celery") {
        eprintln!("==> Celery baseline");
        let mut section = Section::new("Celery on the same broker");
        let jobs = if quick { 3_000 } else { 10_000 };
        celery::run(&bench, &vhost, jobs, &mut section).await;
        sections.push(section);
    }
    if wanted("spike") {
        eprintln!("==> the spike through the HTTP API");
        sections.push(spike_section(&broker, quick).await);
    }
    if wanted("orders") {
        eprintln!("==> orders beside uploads through the HTTP API");
        sections.push(orders_section(&broker, quick).await);
    }
    if wanted("outbox") {
        eprintln!("==> the outbox: upload response before and after, relay throughput");
        sections.push(outbox_section(&broker, quick).await);
    }
    let preamble = preamble(&broker, quick).await;
    let markdown = report::markdown(&preamble, &sections);
    println!("{markdown}");
    if !quick && std::env::var_os("BENCH_ONLY").is_none() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md");
        std::fs::write(path, &markdown).expect("writing BENCHMARKS.md");
        eprintln!("wrote BENCHMARKS.md");
    }
}

/// Whether `BENCH_ONLY` (a comma-separated list of sections, for working on one) allows
/// `section`; without it every section runs.
fn wanted(section: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s.trim() == section))
}

/// Publish and consume against raw lapin, then the latency curve against the end-to-end
/// capacity.
async fn throughput_section(bench: &throughput::Bench, quick: bool) -> Section {
    let mut section = Section::new("Throughput: the library against raw lapin");
    let (count, rounds) = if quick { (5_000, 2) } else { (40_000, 9) };
    throughput::run(bench, count, rounds, &mut section).await;
    eprintln!("==> latency");
    let capacity = latency::capacity(bench, count * 2, &mut section).await;
    let duration = Duration::from_secs(if quick { 3 } else { 10 });
    for share in [25, 50, 75, 90] {
        let label = format!("{share} % of capacity");
        let rate = capacity * f64::from(share) / 100.0;
        latency::at_rate(bench, rate, duration, &label, &mut section).await;
    }
    // A web app's everyday pace, where the broker is far from saturated.
    latency::at_rate(bench, 500.0, duration, "everyday load", &mut section).await;
    section
}

/// The seed's spike with small photos, at its rate and flat out, with 1 and with 3 workers;
/// then phone-size photos flat out and at half the rate reached flat out.
async fn spike_section(broker: &Broker, quick: bool) -> Section {
    let bin = processes::build_binaries();
    let small = small_photos();
    let mut section =
        Section::new("The spike: uploads through the HTTP API, as compose.yaml ships the app");
    let (uploads, rate) = if quick {
        (500, 100.0)
    } else {
        (10_000, 10_000.0 / 60.0)
    };
    for workers in spike_workers() {
        let paced = spike::Scenario {
            workers,
            uploads,
            pace: spike::Pace::Rate(rate),
            target: true,
        };
        let label = format!("640×480: {uploads} at {rate:.0}/s, {workers} worker(s)");
        spike::run(&bin, broker, &small, paced, &label, &mut section).await;
        let flood = spike::Scenario {
            workers,
            uploads,
            pace: spike::Pace::Flood(32),
            target: false,
        };
        let label = format!("640×480: {uploads} flat out (32 in flight), {workers} worker(s)");
        spike::run(&bin, broker, &small, flood, &label, &mut section).await;
    }
    let phone: Vec<Vec<u8>> = (0..5)
        .map(|seed| support::images::phone_photo(4000, 3000, seed).expect("phone photo"))
        .collect();
    let size = phone.iter().map(Vec::len).sum::<usize>() as f64 / phone.len() as f64 / 1e6;
    let (uploads, workers) = (if quick { 40 } else { 300 }, 3);
    let flood = spike::Scenario {
        workers,
        uploads,
        pace: spike::Pace::Flood(8),
        target: false,
    };
    let label =
        format!("12 MP ({size:.1} MB): {uploads} flat out (8 in flight), {workers} workers");
    let reached = spike::run(&bin, broker, &phone, flood, &label, &mut section).await;
    let rate = reached / 2.0;
    let uploads = ((rate * if quick { 10.0 } else { 60.0 }) as usize).max(10);
    let paced = spike::Scenario {
        workers,
        uploads,
        pace: spike::Pace::Rate(rate),
        target: true,
    };
    let label =
        format!("12 MP: {uploads} at {rate:.1}/s (half the flat-out rate), {workers} workers");
    spike::run(&bin, broker, &phone, paced, &label, &mut section).await;
    section
}

/// Orders and small uploads side by side at the seed's rate, each.
async fn orders_section(broker: &Broker, quick: bool) -> Section {
    let bin = processes::build_binaries();
    let small = small_photos();
    let mut section = Section::new("Orders: the store's response beside an upload's");
    let (count, rate) = if quick { (300, 50.0) } else { (3_000, 50.0) };
    orders::run(&bin, broker, &small, count, rate, &mut section).await;
    section
}

/// The outbox's cost: the upload's response with and without it, and the relay's
/// throughput against direct publishing.
async fn outbox_section(broker: &Broker, quick: bool) -> Section {
    let bin = processes::build_binaries();
    let small = small_photos();
    let mut section = Section::new("The outbox: what it costs the upload and the publisher");
    let (count, rate) = if quick { (200, 50.0) } else { (1_500, 50.0) };
    outbox::response(&bin, broker, &small, count, rate, &mut section).await;
    let (jobs, rounds) = if quick { (5_000, 1) } else { (20_000, 3) };
    outbox::relay_throughput(broker, jobs, rounds, &mut section).await;
    section
}

/// The 640×480 photos the HTTP sections upload, twenty different ones.
fn small_photos() -> Vec<Vec<u8>> {
    (0..20)
        .map(|seed| support::images::jpeg_photo(640, 480, seed).expect("test photo"))
        .collect()
}

/// Worker counts for the spike: `BENCH_SPIKE_WORKERS` (comma-separated, for working on one
/// case), else 1 and 3.
fn spike_workers() -> Vec<usize> {
    std::env::var("BENCH_SPIKE_WORKERS").map_or_else(
        |_| vec![1, 3],
        |list| {
            list.split(',')
                .map(|n| n.trim().parse().expect("BENCH_SPIKE_WORKERS"))
                .collect()
        },
    )
}

/// Machine, versions and settings, for the top of the report.
async fn preamble(broker: &Broker, quick: bool) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let rabbitmq = broker.management().version().await.unwrap_or_else(|e| e);
    let (image, tag) = support::broker::image();
    format!(
        "# Benchmarks\n\nWritten by `cargo bench -p integration-tests`{}; every ratio compares two figures \
         measured in the same run against the same broker (same URL and port mapping).\n\n\
         - machine: {cpu}, {cores} cores (shared by broker, clients and workers)\n\
         - RabbitMQ {rabbitmq} (`{image}:{tag}`, single node, in Docker)\n\
         - {rustc}, release profile\n\
         - spike: producer and workers in containers with compose.yaml's settings (workers at \
         `cpu_shares` {}, `RUST_LOG={}`, files on a Docker volume on disk), the host's release \
         binaries mounted into `debian:bookworm-slim`, reaching the broker and PostgreSQL \
         directly on Docker's bridge as in compose (not through Docker's port proxy)\n\
         - date: {}\n",
        if quick { " (quick mode)" } else { "" },
        containers::WORKER_CPU_SHARES,
        containers::LOG_LEVEL,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    )
}
