//! The worker processes, supervised like a restart policy would: a worker that exits (killed
//! by the harness, aborted by a poisonous job, or anything else) is started again after half
//! a second, and every exit is counted with its cause.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::procs::{self, Spec};

/// The pause before a worker that exited is started again.
const RESTART_DELAY: Duration = Duration::from_millis(500);

/// One supervised worker.
#[derive(Debug, Default)]
struct Slot {
    name: String,
    /// The running process, if any.
    pid: Mutex<Option<u32>>,
    /// How each earlier process of this worker ended.
    exits: Mutex<Vec<String>>,
}

/// Every worker process of the run.
#[derive(Debug)]
pub struct Workers {
    slots: Vec<Arc<Slot>>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    /// Starts one supervised process per spec, named `names[i]`.
    pub fn start(workers: Vec<(String, Spec)>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut slots = Vec::new();
        let mut tasks = Vec::new();
        for (name, spec) in workers {
            let slot = Arc::new(Slot {
                name,
                ..Slot::default()
            });
            tasks.push(tokio::spawn(supervise(
                Arc::clone(&slot),
                spec,
                stopped.clone(),
            )));
            slots.push(slot);
        }
        Self { slots, tasks, stop }
    }

    /// The worker names, in order.
    pub fn names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// Worker `n`'s name.
    pub fn name(&self, n: usize) -> &str {
        self.slots.get(n).map_or("?", |s| s.name.as_str())
    }

    fn pid(&self, n: usize) -> anyhow::Result<u32> {
        let slot = self.slots.get(n).ok_or_else(|| anyhow!("no worker {n}"))?;
        let pid = *slot.pid.lock().unwrap_or_else(PoisonError::into_inner);
        pid.ok_or_else(|| anyhow!("{} is not running", slot.name))
    }

    /// Sends `signal` to worker `n`'s current process.
    pub fn signal(&self, n: usize, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid(n)?;
        procs::signal(pid, signal).with_context(|| format!("signalling {}", self.name(n)))
    }

    /// Per worker: its name and how each of its processes ended.
    pub fn exits(&self) -> Vec<(String, Vec<String>)> {
        self.slots
            .iter()
            .map(|s| {
                let exits = s.exits.lock().unwrap_or_else(PoisonError::into_inner);
                (s.name.clone(), exits.clone())
            })
            .collect()
    }
}

impl Drop for Workers {
    /// Kills every worker, even a frozen one, whatever happened.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for slot in &self.slots {
            if let Some(pid) = *slot.pid.lock().unwrap_or_else(PoisonError::into_inner) {
                let _ = procs::signal(pid, "KILL");
            }
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Runs the worker of `slot`, again and again, until told to stop.
async fn supervise(slot: Arc<Slot>, spec: Spec, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let ended = match procs::spawn(&spec) {
            Ok(mut child) => {
                *slot.pid.lock().unwrap_or_else(PoisonError::into_inner) = child.id();
                let ended = tokio::select! {
                    status = child.wait() => status.map_or_else(|e| format!("lost: {e}"), |s| procs::describe_exit(&s)),
                    _ = stop.changed() => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        return;
                    }
                };
                *slot.pid.lock().unwrap_or_else(PoisonError::into_inner) = None;
                ended
            }
            Err(error) => format!("could not start: {error:#}"),
        };
        slot.exits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ended);
        tokio::select! {
            () = tokio::time::sleep(RESTART_DELAY) => {}
            _ = stop.changed() => return,
        }
    }
}
