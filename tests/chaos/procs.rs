//! Child processes of the harness (the producer and the workers): started with their
//! environment and a log file of their own, signalled by pid, and killed when dropped.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How to start one process.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Standard output and error are appended here (a restarted process keeps its log).
    pub log: PathBuf,
}

/// Starts `spec`; the child is killed if its handle is dropped.
pub fn spawn(spec: &Spec) -> anyhow::Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .with_context(|| format!("opening {}", spec.log.display()))?;
    Command::new(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("sharing the log file")?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to process `pid`.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let output = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .output()
        .context("running kill")?;
    if !output.status.success() {
        bail!(
            "kill -s {signal} {pid}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// How a process ended, for the report: `SIGKILL`, `SIGABRT`, `exit 1`, ...
pub fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(9)) => "SIGKILL".to_owned(),
        (_, Some(6)) => "SIGABRT".to_owned(),
        (_, Some(15)) => "SIGTERM".to_owned(),
        (_, Some(n)) => format!("signal {n}"),
        (Some(code), None) => format!("exit {code}"),
        (None, None) => "unknown".to_owned(),
    }
}
