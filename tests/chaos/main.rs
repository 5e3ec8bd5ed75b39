//! The chaos run: the real stack (RabbitMQ and PostgreSQL containers, the `producer` binary,
//! three `chaos-worker` processes) under load while a printed schedule of faults hits it:
//! broker restarts, forced connection closes, worker SIGKILLs and a SIGSTOP, memory and disk
//! alarms, and planted poison. It ends with a table (accepted, handled, lost, double
//! effects, mails, dead letters, redeliveries, recovery times) and exits non-zero on a miss.
//!
//! `cargo run -p integration-tests --bin chaos` (full, writes CHAOS.md) or `-- --quick`.

// A report is what this program is for.
#![allow(clippy::print_stdout)]

mod account;
mod alarms;
mod books;
mod broker_view;
mod brokers;
mod dlq;
mod faults;
mod load;
mod nodes;
mod outage;
mod photo_checks;
mod plants;
mod procs;
mod profile;
mod records;
mod report;
mod schedule;
mod settle;
mod stack;
mod worker_faults;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::time::Instant;

use crate::books::Books;
use crate::faults::{Injector, Outcome};
use crate::load::{Pace, Uploader};
use crate::plants::Planted;
use crate::profile::Profile;
use crate::report::{Machine, Report};
use crate::stack::{Paths, Stack};

#[tokio::main]
async fn main() -> ExitCode {
    let profile = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => Profile::full(),
        [quick] if quick == "--quick" => Profile::quick(),
        [cluster] if cluster == "--cluster" => Profile::cluster(),
        _ => {
            println!(
                "usage: chaos [--quick | --cluster]   (see CHAOS.md and the README's \"Chaos run\")"
            );
            return ExitCode::from(2);
        }
    };
    let result = tokio::select! {
        result = prepare_and_run(&profile) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted; everything was torn down")),
    };
    match result {
        Ok(report) => finish(&profile, &report),
        Err(error) => {
            println!("\nCHAOS RUN FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn prepare_and_run(profile: &Profile) -> anyhow::Result<Report> {
    let paths = build_siblings()?;
    run(profile, &paths).await
}

/// Builds `producer` and `chaos-worker` next to this binary, in the same profile, so that
/// one command suffices.
fn build_siblings() -> anyhow::Result<Paths> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let bin_dir = exe.parent().context("this binary's folder")?.to_path_buf();
    let release = bin_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", "producer", "--bin", "producer"]);
    build.args(["-p", "integration-tests", "--bin", "chaos-worker"]);
    if release {
        build.arg("--release");
    }
    // `cargo run` gave this process its package's variables; some build scripts (ring's)
    // rerun when they change, so the nested build would rebuild half the tree each time.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key.as_ref(),
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            build.env_remove(key.as_ref());
        }
    }
    println!("==> building the producer and the chaos worker");
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the producer and the chaos worker failed: {status}");
    }
    let target = bin_dir
        .parent()
        .map_or_else(|| bin_dir.clone(), PathBuf::from);
    let run_dir = target
        .join("chaos")
        .join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string());
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    Ok(Paths { bin_dir, run_dir })
}

async fn run(profile: &Profile, paths: &Paths) -> anyhow::Result<Report> {
    let (began, started) = (Instant::now(), chrono::Utc::now());
    let schedule = schedule::plan(profile);
    let described = schedule::describe(&schedule);
    println!(
        "==> chaos run, profile {}: {} faults over about {}; logs in {}\n\n{described}",
        profile.name,
        schedule.len(),
        schedule::clock(schedule::planned_length(&schedule)),
        paths.run_dir.display()
    );
    println!(
        "==> starting RabbitMQ ({}), PostgreSQL, the producer and {} workers",
        if profile.cluster {
            "three nodes"
        } else {
            "one node"
        },
        profile.workers
    );
    let stack = Stack::start(profile, paths).await?;
    let rabbitmq = stack.management().version().await.map_err(|e| anyhow!(e))?;
    let books = Arc::new(Books::default());
    let (outcomes, planted, load_length) =
        load_and_faults(profile, &stack, &books, &schedule).await?;
    let (accounts, load) =
        conclude(profile, &stack, &books, &outcomes, &planted, load_length).await?;
    print_dead_letters(&accounts.letters);
    Ok(Report {
        profile: profile.name,
        started,
        elapsed: began.elapsed(),
        machine: Machine::here(rabbitmq, stack.postgres_version.clone()),
        images: format!(
            "image {}, {}",
            std::env::var("RABBITMQ_IMAGE")
                .unwrap_or_else(|_| support::broker::DEFAULT_IMAGE.to_owned()),
            stack.broker.describe()
        ),
        schedule: described,
        load,
        outcomes,
        rows: accounts.rows,
        dlq_rows: accounts.dlq_rows,
        misses: accounts.misses,
    })
}

/// Runs the load and the fault schedule, then stops the load: the faults' outcomes, the
/// poison planted, and how long the load ran.
async fn load_and_faults(
    profile: &Profile,
    stack: &Stack,
    books: &Arc<Books>,
    schedule: &[schedule::Planned],
) -> anyhow::Result<(Vec<Outcome>, Vec<Planted>, Duration)> {
    let uploader = Uploader {
        http: stack.http.clone(),
        base: stack.base.clone(),
        books: Arc::clone(books),
    };
    let pace = Pace {
        uploads: profile.uploads,
        effects: profile.steady_effects,
        length: schedule::planned_length(schedule),
        schedule_done: Arc::new(AtomicBool::new(false)),
    };
    println!("==> load and faults");
    let load_start = Instant::now();
    let uploads = tokio::spawn(load::drive_uploads(uploader.clone(), pace.clone()));
    let effects = tokio::spawn(load::drive_effects(
        stack.publisher.clone(),
        Arc::clone(books),
        pace.clone(),
    ));
    let progress = tokio::spawn(progress(Arc::clone(books), stack.pool.clone(), load_start));
    let injector = Injector {
        stack,
        books,
        uploader: &uploader,
        profile,
        planted: std::sync::Mutex::default(),
    };
    let outcomes = injector.run(schedule, load_start).await;
    pace.schedule_done.store(true, Ordering::SeqCst);
    let stopping = async {
        let _ = uploads.await;
        let _ = effects.await;
    };
    let stopped = tokio::time::timeout(Duration::from_secs(600), stopping).await;
    progress.abort();
    stopped.context("the load did not stop within 10 minutes")?;
    let planted = injector
        .planted
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    Ok((outcomes, planted, load_start.elapsed()))
}

/// Waits for the system to settle and does the accounting; also a line on the load phase.
async fn conclude(
    profile: &Profile,
    stack: &Stack,
    books: &Books,
    outcomes: &[Outcome],
    planted: &[Planted],
    load_length: Duration,
) -> anyhow::Result<(account::Accounts, String)> {
    let load = schedule::clock(load_length);
    println!("==> load stopped after {load}; waiting for the system to settle");
    let drained = settle::settle(stack, profile.drain_deadline).await;
    let inputs = account::Inputs {
        stack,
        books,
        profile,
        planted,
        outcomes,
    };
    let mut accounts = account::account(&inputs).await?;
    let line = match &drained {
        Ok(took) => format!(
            "Load phase {load}; the system settled (queues empty, nothing unacked) {:.1} s \
             after the load stopped.",
            took.as_secs_f64()
        ),
        Err(error) => {
            let left = settle::leftovers(stack).await.unwrap_or_default();
            accounts.misses.insert(
                0,
                format!("the system did not settle: {error:#}; left: {left:?}"),
            );
            format!("Load phase {load}; the system did NOT settle: {error:#}")
        }
    };
    Ok((accounts, line))
}

/// A line every 15 s, so a long run shows it is alive.
async fn progress(books: Arc<Books>, pool: sqlx::PgPool, load_start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.tick().await;
    loop {
        tick.tick().await;
        let handled = records::handled_count(&pool).await.unwrap_or(-1);
        println!(
            "  [{}] load: {} uploads accepted, {} effect jobs accepted, {handled} applied",
            schedule::clock(load_start.elapsed()),
            books.upload_count(),
            books.effect_count(),
        );
    }
}

fn print_dead_letters(letters: &[dlq::DeadLetter]) {
    println!("\n==> {} dead letters", letters.len());
    for letter in letters {
        println!("  {} {} {}", letter.queue, letter.id, letter.reason);
    }
}

fn finish(profile: &Profile, report: &Report) -> ExitCode {
    let markdown = report::render(report);
    println!("\n{markdown}");
    if profile.name == "full" {
        let path = report::chaos_md();
        match std::fs::write(&path, &markdown) {
            Ok(()) => println!("Written to {}", path.display()),
            Err(error) => println!("Could not write {}: {error}", path.display()),
        }
    }
    if report.misses.is_empty() {
        println!("CHAOS RUN PASSED");
        ExitCode::SUCCESS
    } else {
        println!("CHAOS RUN FAILED: {} misses", report.misses.len());
        for miss in &report.misses {
            println!("  - {miss}");
        }
        ExitCode::FAILURE
    }
}
