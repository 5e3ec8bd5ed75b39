//! End-to-end check of the containers, as users run them: builds the image, brings the stack
//! up with three workers, uploads through the published port, kills a worker mid-flight,
//! has one exit on its own and checks Docker restarts it, stops all workers while uploads
//! keep coming, places orders that the order workers (a service of their own) handle, and
//! prints a summary table.
//!
//! Run by `.ci/run`: `cargo run -p integration-tests --bin compose-e2e`.

// A failed check ends the run with its message; that is the point of this program.
#![allow(clippy::print_stdout)]

mod compose;
mod orders;
mod restart;
mod stack;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use photos::imaging::{Fingerprint, UploadLimits};
use serde_json::Value;
use support::images::BANNED_SEED;
use support::wait_until;

use compose::Compose;
use stack::{Stack, picture};

const WORKERS: usize = 3;
const FIRST_WAVE: u32 = 200;
const BANNED_IN_FIRST_WAVE: u32 = 10;
const BACKLOG_WAVE: u32 = 100;
/// Uploads after a worker restarted, for it to consume.
const RESTART_WAVE: u32 = 30;

/// One line of the summary.
struct Row {
    step: &'static str,
    outcome: String,
    seconds: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut rows = Vec::new();
    let result = run(&mut rows).await;
    print_summary(&rows);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            println!("\nE2E FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn free_port() -> Result<u16, String> {
    support::free_port().map_err(|e| format!("finding a free port: {e}"))
}

async fn timed<T>(
    rows: &mut Vec<Row>,
    step: &'static str,
    work: impl Future<Output = Result<(T, String), String>>,
) -> Result<T, String> {
    let started = Instant::now();
    println!("\n==> {step}");
    let (value, outcome) = work.await.map_err(|e| format!("{step}: {e}"))?;
    rows.push(Row {
        step,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(value)
}

async fn run(rows: &mut Vec<Row>) -> Result<(), String> {
    let stack = timed(rows, "build the image, start the stack", start_stack()).await?;
    let first: Vec<u32> = (0..FIRST_WAVE).collect();
    let killed = timed(
        rows,
        "200 uploads, one worker killed midway",
        upload_with_a_kill(&stack, &first),
    )
    .await?;
    timed(
        rows,
        "every image of the first wave done",
        wait_all(&stack, &killed, Duration::from_secs(600)),
    )
    .await?;
    timed(
        rows,
        "all worker replicas handled jobs",
        replicas_worked(&stack),
    )
    .await?;
    let after_restart = timed(
        rows,
        "a worker exits on its own: restarted, consumes again",
        restart::exited_worker_comes_back(&stack, &restart_wave()),
    )
    .await?;
    timed(
        rows,
        "every image uploaded after the restart done",
        wait_all(&stack, &after_restart, Duration::from_secs(300)),
    )
    .await?;
    let backlog = timed(
        rows,
        "workers stopped: 100 uploads queue up",
        upload_without_workers(&stack),
    )
    .await?;
    timed(
        rows,
        "workers back: the backlog drains",
        drain_backlog(&stack, &backlog),
    )
    .await?;
    timed(rows, "one confirmation mail per upload", mails(&stack)).await?;
    timed(
        rows,
        "20 orders: order workers take stock, mail, notify the warehouse",
        orders::orders_flow(&stack),
    )
    .await?;
    let started = Instant::now();
    drop(stack);
    rows.push(Row {
        step: "tear down (volumes too)",
        outcome: "done".into(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(())
}

async fn start_stack() -> Result<(Stack, String), String> {
    let (http_port, ui_port, warehouse_port) = (free_port()?, free_port()?, free_port()?);
    let fingerprint = fingerprint(BANNED_SEED)?;
    // Only the banned picture may match the blocklist (distance at most 8 of 64 bits).
    for seed in BANNED_IN_FIRST_WAVE..FIRST_WAVE + BACKLOG_WAVE + RESTART_WAVE {
        let distance = fingerprint.distance(&self::fingerprint(seed)?);
        if distance <= 10 {
            return Err(format!(
                "test picture {seed} is only {distance} bits from the banned one"
            ));
        }
    }
    let blocklist = std::env::temp_dir().join(format!("e2e-blocklist-{}.txt", std::process::id()));
    std::fs::write(&blocklist, format!("{fingerprint}\n")).map_err(|e| e.to_string())?;
    let env = vec![
        // The replica check reads the workers' per-job log lines.
        ("RUST_LOG".to_owned(), "info".to_owned()),
        ("HTTP_PORT".to_owned(), http_port.to_string()),
        ("RABBITMQ_UI_PORT".to_owned(), ui_port.to_string()),
        ("WAREHOUSE_PORT".to_owned(), warehouse_port.to_string()),
        ("BLOCKLIST_PATH".to_owned(), blocklist.display().to_string()),
    ];
    let compose = Compose::new(&format!("photos-e2e-{}", std::process::id()), env);
    compose.run(&["build"])?;
    compose.run(&["up", "--detach"])?;
    let stack = Stack {
        compose,
        base: format!("http://127.0.0.1:{http_port}"),
        management: format!("http://127.0.0.1:{ui_port}/api"),
        warehouse: format!("http://127.0.0.1:{warehouse_port}"),
        http: reqwest::Client::new(),
    };
    wait_until(
        Duration::from_secs(300),
        "the producer to be ready",
        || async { stack.get_status(&format!("{}/readyz", stack.base)).await == Some(200) },
    )
    .await?;
    let workers = stack.compose.containers("worker")?.len();
    if workers != WORKERS {
        return Err(format!(
            "{workers} worker containers, expected {WORKERS} (deploy.replicas)"
        ));
    }
    let guest = stack
        .http
        .get(format!("{}/overview", stack.management))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    if guest.is_ok_and(|r| r.status().is_success()) {
        return Err("the broker still has a guest user".into());
    }
    let outcome = format!(
        "{} up, {WORKERS} workers, no guest user",
        stack.compose.program()
    );
    Ok((stack, outcome))
}

async fn upload_with_a_kill(
    stack: &Stack,
    seeds: &[u32],
) -> Result<(Vec<(u32, String)>, String), String> {
    let (before, after) = seeds.split_at(seeds.len() / 2);
    let mut accepted = stack.upload_all(before).await?;
    let victim = stack
        .compose
        .containers("worker")?
        .into_iter()
        .nth(1)
        .ok_or("no second worker")?;
    let killed = std::process::Command::new("docker")
        .args(["kill", &victim])
        .output()
        .map_err(|e| e.to_string())?;
    if !killed.status.success() {
        return Err(format!(
            "docker kill: {}",
            String::from_utf8_lossy(&killed.stderr)
        ));
    }
    accepted.extend(stack.upload_all(after).await?);
    let outcome = format!(
        "{} × 202; killed worker {} after {}",
        accepted.len(),
        &victim[..12.min(victim.len())],
        before.len()
    );
    Ok((accepted, outcome))
}

/// The seeds of the uploads after the restart, past the other waves'.
fn restart_wave() -> Vec<u32> {
    let first = FIRST_WAVE + BACKLOG_WAVE;
    (first..first + RESTART_WAVE).collect()
}

fn fingerprint(seed: u32) -> Result<Fingerprint, String> {
    Fingerprint::of_image(&picture(seed)?, &UploadLimits::default()).map_err(|e| e.to_string())
}

fn expected_state(seed: u32) -> &'static str {
    if seed < BANNED_IN_FIRST_WAVE {
        "rejected"
    } else {
        "ready"
    }
}

async fn wait_all(
    stack: &Stack,
    images: &[(u32, String)],
    patience: Duration,
) -> Result<((), String), String> {
    // The counts by state, and the first few images not (yet) where they should end.
    let seen: Mutex<(BTreeMap<String, usize>, Vec<Value>)> = Mutex::default();
    let waited = wait_until(
        patience,
        "every image to reach its expected state",
        || async {
            let mut counts = BTreeMap::new();
            let mut astray = Vec::new();
            for (seed, id) in images {
                let status = stack.image_status(id).await.unwrap_or(Value::Null);
                let state = status["state"].as_str().unwrap_or("unreachable").to_owned();
                if state != expected_state(*seed) && astray.len() < 3 {
                    astray.push(status);
                }
                *counts.entry(state).or_default() += 1;
            }
            let all = astray.is_empty();
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = (counts, astray);
            all
        },
    )
    .await;
    let (states, astray) = seen.into_inner().unwrap_or_else(|e| e.into_inner());
    waited.map_err(|e| format!("{e}; states: {states:?}; for example: {astray:#?}"))?;
    Ok(((), format!("{states:?}; nothing lost")))
}

async fn replicas_worked(stack: &Stack) -> Result<((), String), String> {
    let logs = stack.compose.output(&["logs", "--no-color", "worker"])?;
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    for line in logs.lines().filter(|l| l.contains(" done")) {
        if let Some((container, _)) = line.split_once('|') {
            *done.entry(container.trim().to_owned()).or_default() += 1;
        }
    }
    let busy = done.values().filter(|n| **n > 0).count();
    if busy < WORKERS {
        return Err(format!("only {busy} replicas handled jobs: {done:?}"));
    }
    Ok((
        (),
        format!("jobs per replica: {:?}", done.values().collect::<Vec<_>>()),
    ))
}

async fn upload_without_workers(stack: &Stack) -> Result<(Vec<(u32, String)>, String), String> {
    stack.compose.run(&["stop", "worker"])?;
    let seeds: Vec<u32> = (FIRST_WAVE..FIRST_WAVE + BACKLOG_WAVE).collect();
    let started = Instant::now();
    let accepted = stack.upload_all(&seeds).await?;
    let upload_seconds = started.elapsed().as_secs_f64();
    let want = u64::from(BACKLOG_WAVE);
    let depth = AtomicU64::new(0);
    wait_until(
        Duration::from_secs(60),
        "the thumbnail queue to hold the backlog",
        || async {
            let now = stack
                .queue_depth("jobs.process_thumbnails")
                .await
                .unwrap_or(0);
            depth.store(now, Ordering::SeqCst);
            now >= want
        },
    )
    .await?;
    let depth = depth.into_inner();
    Ok((
        accepted,
        format!(
            "{BACKLOG_WAVE} × 202 in {upload_seconds:.1}s; jobs.process_thumbnails holds {depth}"
        ),
    ))
}

async fn drain_backlog(stack: &Stack, images: &[(u32, String)]) -> Result<((), String), String> {
    stack.compose.run(&["start", "worker"])?;
    wait_all(stack, images, Duration::from_secs(600)).await
}

async fn mails(stack: &Stack) -> Result<((), String), String> {
    let count = stack.compose.output(&[
        "exec",
        "-T",
        "worker",
        "sh",
        "-c",
        "ls /data/outbox | wc -l",
    ])?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|e| format!("counting mails: {e}"))?;
    let want = FIRST_WAVE + BACKLOG_WAVE + RESTART_WAVE;
    if count != want {
        return Err(format!("{count} mails in the outbox, expected {want}"));
    }
    Ok(((), format!("{count} mails for {want} uploads")))
}

fn print_summary(rows: &[Row]) {
    println!("\n| step | outcome | seconds |\n| --- | --- | ---: |");
    for row in rows {
        println!("| {} | {} | {:.1} |", row.step, row.outcome, row.seconds);
    }
}
