//! Faults that hit one worker process: SIGKILL while it holds a full prefetch of jobs,
//! and SIGSTOP past the heartbeat timeout (the broker drops it and hands its jobs to the
//! others), then SIGCONT (it reconnects and works again).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use support::wait_until;
use tokio::time::Instant;

use crate::broker_view;
use crate::faults::{Injected, Injector};
use crate::load::publish_effects;
use crate::records;
use crate::stack::CONCURRENCY;

/// Bursts published at most to get a victim to hold unacked jobs.
const BURSTS: usize = 3;

impl Injector<'_> {
    /// Publishes bursts of effect jobs until worker `n` holds more than `over` unacked
    /// deliveries (by the statistics or the broker's own view); returns how many it held.
    async fn hold_unacked(&self, n: usize, over: u64) -> anyhow::Result<u64> {
        let connection = format!("{} consumer", self.stack.workers.name(n));
        // (the last count seen, the largest)
        let seen = Mutex::new((0, 0));
        for _ in 0..BURSTS {
            publish_effects(
                &self.stack.publisher,
                self.books,
                u64::from(self.profile.burst),
            )
            .await;
            let held = wait_until(Duration::from_secs(10), "unacked jobs", || async {
                // The statistics are quick but may miss a fresh connection; the broker's own
                // view is slow but complete.
                let (statistics, broker) = tokio::join!(
                    self.stack.management().unacked_of_client(&connection),
                    broker_view::unacked_of(self.stack, &connection),
                );
                let unacked = statistics
                    .ok()
                    .flatten()
                    .max(broker.ok().flatten())
                    .unwrap_or(0);
                let mut seen = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *seen = (unacked, seen.1.max(unacked));
                unacked > over
            })
            .await;
            if held.is_ok() {
                return Ok(seen.into_inner().unwrap_or_default().0);
            }
        }
        let most = seen.into_inner().unwrap_or_default().1;
        Err(anyhow!(
            "{connection} never showed over {over} unacked jobs after {BURSTS} bursts (at most {most})"
        ))
    }

    /// SIGKILL while the worker holds several jobs: the runtime's prefetch is its concurrency,
    /// so every job it holds is running (what it prefetched), and all come back to the others.
    pub(crate) async fn kill(&self, n: usize) -> anyhow::Result<Injected> {
        let unacked = self.hold_unacked(n, CONCURRENCY / 2).await?;
        self.stack.workers.signal(n, "KILL")?;
        let mut injected = Injected::now(format!(
            "{} killed holding {unacked} unacked",
            self.stack.workers.name(n)
        ));
        injected.victim = Some(n);
        Ok(injected)
    }

    pub(crate) async fn freeze(&self, n: usize) -> anyhow::Result<Injected> {
        let name = self.stack.workers.name(n).to_owned();
        let unacked = self.hold_unacked(n, 0).await?;
        self.stack.workers.signal(n, "STOP")?;
        let (frozen, frozen_utc) = (Instant::now(), Utc::now());
        let before = records::handled_count(&self.stack.pool).await.unwrap_or(0);
        let mut misses = Vec::new();
        let dropped = self.wait_dropped(&name).await;
        let dropped_after = frozen.elapsed();
        if let Err(e) = dropped {
            misses.push(e);
        }
        let others = wait_until(
            Duration::from_secs(30),
            "the other workers to handle jobs meanwhile",
            || async {
                records::handled_count(&self.stack.pool)
                    .await
                    .is_ok_and(|now| now > before)
            },
        )
        .await;
        if let Err(e) = others {
            misses.push(e);
        }
        if let Err(e) = self.wait_taken_over(&name, frozen_utc).await {
            misses.push(e);
        }
        // Resumed whatever happened: a frozen worker must not outlive its fault.
        self.stack.workers.signal(n, "CONT")?;
        let handled = records::handled_count(&self.stack.pool).await? - before;
        let taken =
            records::redelivered_to_others(&self.stack.pool, &name, frozen_utc, Utc::now()).await?;
        let mut injected = Injected::now(format!(
            "{name} frozen holding {unacked} unacked; dropped by the broker after {:.1} s; \
             {handled} jobs handled by the others meanwhile, {taken} runs of redelivered ones; resumed",
            dropped_after.as_secs_f64()
        ));
        injected.victim = Some(n);
        injected.misses = misses;
        Ok(injected)
    }

    /// Waits until other workers run jobs redelivered since `since`: the frozen worker's.
    async fn wait_taken_over(&self, name: &str, since: DateTime<Utc>) -> Result<(), String> {
        wait_until(
            Duration::from_secs(30),
            &format!("the others to run the jobs {name} held"),
            || async {
                records::redelivered_to_others(&self.stack.pool, name, since, Utc::now())
                    .await
                    .is_ok_and(|n| n > 0)
            },
        )
        .await
    }

    /// Waits until the broker has closed `name`'s consumer connection.
    async fn wait_dropped(&self, name: &str) -> Result<(), String> {
        let connection = format!("{name} consumer");
        wait_until(
            Duration::from_secs(60),
            &format!("the broker to drop {connection}"),
            || async {
                broker_view::connection_names(self.stack)
                    .await
                    .is_ok_and(|open| !open.contains(&connection))
            },
        )
        .await
    }
}
