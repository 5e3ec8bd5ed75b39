//! Runs the fault schedule: each fault at its planned time (or once the previous one has
//! recovered, if later), then measures the recovery: from the end of the fault to the first
//! job handled, the first upload accepted, the victim working again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use support::wait_until;
use tokio::time::Instant;

use crate::books::Books;
use crate::load::Uploader;
use crate::plants::Planted;
use crate::profile::Profile;
use crate::records;
use crate::schedule::{Fault, Planned, clock};
use crate::stack::Stack;

/// How long recovery may take before it counts as a miss.
const RECOVERY: Duration = Duration::from_secs(120);

/// Injects the faults.
pub struct Injector<'a> {
    pub stack: &'a Stack,
    pub books: &'a Arc<Books>,
    pub uploader: &'a Uploader,
    pub profile: &'a Profile,
    /// The poison planted so far.
    pub planted: Mutex<Vec<Planted>>,
}

/// What an injection reports: when the fault ended, what happened, whom it hit.
#[derive(Debug)]
pub struct Injected {
    pub end: DateTime<Utc>,
    pub note: String,
    pub victim: Option<usize>,
    pub misses: Vec<String>,
}

impl Injected {
    pub fn now(note: String) -> Self {
        Self {
            end: Utc::now(),
            note,
            victim: None,
            misses: Vec::new(),
        }
    }
}

/// One fault as it happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fault: Fault,
    pub planned: Duration,
    pub started: Duration,
    /// From its start to its end (broker back, alarm lifted, worker resumed, ...).
    pub lasted: Duration,
    pub note: String,
    /// Uploads answered 503 from its start until it recovered.
    pub refused: usize,
    /// From its end to the first job handled.
    pub handling: Option<Duration>,
    /// From its end to the first upload answered 202.
    pub uploads: Option<Duration>,
    /// From its end to the victim's first run.
    pub victim: Option<Duration>,
    pub misses: Vec<String>,
}

fn since(end: DateTime<Utc>, at: Option<DateTime<Utc>>) -> Option<Duration> {
    at.map(|at| (at - end).to_std().unwrap_or_default())
}

impl Injector<'_> {
    /// Runs every fault of `schedule`, the load having started at `load_start`.
    pub async fn run(&self, schedule: &[Planned], load_start: Instant) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for (n, planned) in schedule.iter().enumerate() {
            tokio::time::sleep_until(load_start + planned.offset).await;
            let started = load_start.elapsed();
            println!("  [{}] #{} {} ...", clock(started), n + 1, planned.fault);
            let outcome = self.one(planned, started).await;
            println!(
                "  [{}] #{} {}: {}{}",
                clock(load_start.elapsed()),
                n + 1,
                planned.fault,
                outcome.note,
                if outcome.misses.is_empty() {
                    String::new()
                } else {
                    format!(" — MISSES: {}", outcome.misses.join("; "))
                }
            );
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn one(&self, planned: &Planned, started: Duration) -> Outcome {
        let (began, began_utc) = (Instant::now(), Utc::now());
        let injected = match self.inject(planned.fault).await {
            Ok(injected) => injected,
            Err(error) => {
                let mut injected = Injected::now(String::from("not injected"));
                injected
                    .misses
                    .push(format!("{}: {error:#}", planned.fault));
                injected
            }
        };
        let lasted = began.elapsed();
        let mut outcome = Outcome {
            fault: planned.fault,
            planned: planned.offset,
            started,
            lasted,
            note: injected.note.clone(),
            refused: 0,
            handling: None,
            uploads: None,
            victim: None,
            misses: injected.misses.clone(),
        };
        self.recover(&injected, &mut outcome).await;
        outcome.refused = self.books.answered_since(503, began_utc);
        outcome
    }

    async fn inject(&self, fault: Fault) -> anyhow::Result<Injected> {
        match fault {
            Fault::RestartBroker => {
                let began = Instant::now();
                self.stack
                    .broker
                    .one()?
                    .restart()
                    .await
                    .map_err(|e| anyhow!(e))?;
                Ok(Injected::now(format!(
                    "broker back after {:.1} s",
                    began.elapsed().as_secs_f64()
                )))
            }
            Fault::BrokerDown => self.outage().await,
            Fault::CloseConnections => {
                let said = self
                    .stack
                    .rabbitmqctl(&["close_all_connections", "chaos fault injection"])
                    .await?;
                let closed = said
                    .lines()
                    .find(|l| l.contains("Closed"))
                    .unwrap_or("closed");
                Ok(Injected::now(closed.trim().to_owned()))
            }
            Fault::KillWorker(n) => self.kill(n).await,
            Fault::FreezeWorker(n) => self.freeze(n).await,
            Fault::MemoryAlarm => self.alarm(crate::alarms::Alarm::Memory).await,
            Fault::DiskAlarm => self.alarm(crate::alarms::Alarm::Disk).await,
            Fault::Plant(plant) => self.plant(plant).await,
            Fault::KillNode(target) => self.kill_node(target).await,
            Fault::CutNode => self.cut_node().await,
        }
    }

    /// Waits for work to resume after `injected`, recording the times and the misses.
    async fn recover(&self, injected: &Injected, outcome: &mut Outcome) {
        let end = injected.end;
        let pool = &self.stack.pool;
        let handled = Mutex::new(None);
        let waited = wait_until(RECOVERY, "a job handled after the fault", || async {
            let first = records::first_handled_after(pool, end).await.ok().flatten();
            *handled.lock().unwrap_or_else(PoisonError::into_inner) = first;
            first.is_some()
        })
        .await;
        outcome.handling = since(
            end,
            handled.into_inner().unwrap_or_else(PoisonError::into_inner),
        );
        if let Err(e) = waited {
            outcome.misses.push(e);
        }
        let waited = wait_until(RECOVERY, "an upload accepted after the fault", || async {
            self.books.first_since(202, end).is_some()
        })
        .await;
        outcome.uploads = since(end, self.books.first_since(202, end));
        if let Err(e) = waited {
            outcome.misses.push(e);
        }
        if let Some(n) = injected.victim {
            outcome.victim = self.victim_back(n, end, &mut outcome.misses).await;
        }
        if let Err(e) = self.stack.wait_for_consumers(RECOVERY).await {
            outcome.misses.push(format!("{e:#}"));
        }
    }

    /// How long after `end` worker `n` ran a job again.
    async fn victim_back(
        &self,
        n: usize,
        end: DateTime<Utc>,
        misses: &mut Vec<String>,
    ) -> Option<Duration> {
        let name = self.stack.workers.name(n);
        let first = Mutex::new(None);
        let what = format!("{name} to handle jobs again");
        let waited = wait_until(RECOVERY, &what, || async {
            let at = records::first_run_by(&self.stack.pool, name, end)
                .await
                .ok()
                .flatten();
            *first.lock().unwrap_or_else(PoisonError::into_inner) = at;
            at.is_some()
        })
        .await;
        if let Err(e) = waited {
            misses.push(e);
        }
        since(
            end,
            first.into_inner().unwrap_or_else(PoisonError::into_inner),
        )
    }
}
