//! The benchmark: `cargo bench -p integration-tests`. Prints the figures and writes them to
//! BENCHMARKS.md. Every comparison is measured in this run, against the same broker.
//! `BENCH_QUICK=1` runs a short version (a smoke test of the benchmark itself).

// A benchmark reports on stdout and stops at the first broken expectation.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

mod report;
mod throughput;

use std::time::Duration;

use support::Broker;

use report::Section;

#[tokio::main]
async fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let broker = Broker::dedicated().await.expect("starting RabbitMQ");
    let vhost = broker.vhost("bench").await.expect("vhost");
    let bench = throughput::Bench::new(&vhost.amqp_url).await;
    let mut sections = Vec::new();

    eprintln!("==> throughput: library vs raw lapin");
    let mut section = Section::new("Throughput: the library against raw lapin");
    let (count, rounds) = if quick { (5_000, 2) } else { (20_000, 5) };
    let capacity = throughput::run(&bench, count, rounds, &mut section).await;
    eprintln!("==> latency");
    let rate = capacity.publish.min(capacity.consume) / 2.0;
    let duration = Duration::from_secs(if quick { 3 } else { 10 });
    throughput::latency(&bench, rate, duration, &mut section).await;
    sections.push(section);

    let preamble = preamble(&broker, quick).await;
    let markdown = report::markdown(&preamble, &sections);
    println!("{markdown}");
    if !quick {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md");
        std::fs::write(path, &markdown).expect("writing BENCHMARKS.md");
        eprintln!("wrote BENCHMARKS.md");
    }
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
         - date: {}\n",
        if quick { " (quick mode)" } else { "" },
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    )
}
