//! The restart policy at work: a worker that exits on its own (here SIGTERM sent from inside
//! its container, which it answers by draining and exiting 0) is started again by Docker
//! and consumes again. `docker kill` and `docker stop` would not do: Docker counts them as
//! manual stops, which no restart policy undoes.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use support::wait_until;

use crate::stack::Stack;

fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn inspect(container: &str, format: &str) -> Result<String, String> {
    docker(&["inspect", "-f", format, container])
}

fn restarts(container: &str) -> Result<u64, String> {
    inspect(container, "{{.RestartCount}}")?
        .parse()
        .map_err(|e| format!("RestartCount: {e}"))
}

fn running(container: &str) -> bool {
    inspect(container, "{{.State.Running}}").is_ok_and(|state| state == "true")
}

/// When the container's current run started, once it runs: Docker counts a restart, and
/// shows the container as running, before the new run has started.
fn started_at(container: &str) -> Option<String> {
    let state = inspect(
        container,
        "{{.State.Running}} {{.State.Restarting}} {{.State.StartedAt}}",
    )
    .ok()?;
    state.strip_prefix("true false ").map(str::to_owned)
}

/// Jobs the container logged as done since `since` (an RFC 3339 time).
fn jobs_done_since(container: &str, since: &str) -> usize {
    let output = Command::new("docker")
        .args(["logs", "--since", since, container])
        .output();
    // The binaries log to stderr; both streams are read all the same.
    output.map_or(0, |output| {
        [&output.stdout, &output.stderr]
            .iter()
            .map(|stream| {
                let logs = String::from_utf8_lossy(stream);
                logs.lines().filter(|line| line.contains(" done")).count()
            })
            .sum()
    })
}

/// Makes a running worker exit on its own, waits for Docker to restart it, uploads `seeds`
/// and waits until the restarted worker handled some of their jobs.
pub async fn exited_worker_comes_back(
    stack: &Stack,
    seeds: &[u32],
) -> Result<(Vec<(u32, String)>, String), String> {
    let victim = stack
        .compose
        .containers("worker")?
        .into_iter()
        .find(|id| running(id))
        .ok_or("no running worker")?;
    let short = &victim[..12.min(victim.len())];
    let before = restarts(&victim)?;
    let first_start = started_at(&victim).ok_or("the worker is not running")?;
    docker(&["exec", &victim, "sh", "-c", "kill -TERM 1"])?;
    wait_until(
        Duration::from_secs(120),
        "docker to restart the worker",
        || async {
            restarts(&victim).is_ok_and(|n| n > before)
                && started_at(&victim).is_some_and(|at| at != first_start)
        },
    )
    .await?;
    let started_at = started_at(&victim).ok_or("the restarted worker is not running")?;
    let exit_code = inspect(&victim, "{{.State.ExitCode}}")?;
    let accepted = stack.upload_all(seeds).await?;
    let done = Mutex::new(0);
    wait_until(
        Duration::from_secs(300),
        "the restarted worker to handle jobs",
        || async {
            let count = jobs_done_since(&victim, &started_at);
            *done.lock().unwrap_or_else(|e| e.into_inner()) = count;
            count > 0
        },
    )
    .await?;
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    let outcome = format!(
        "worker {short} exited ({exit_code}), restarts {before} -> {}, then handled {done} jobs",
        restarts(&victim)?
    );
    Ok((accepted, outcome))
}
