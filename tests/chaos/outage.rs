//! The broker away for a while (`docker stop`, then `docker start`) while uploads go on:
//! the producer's outbox takes every one of them (none refused), and the drain at the end
//! checks that each is processed once the broker is back.

use std::time::Duration;

use anyhow::anyhow;
use chrono::Utc;
use tokio::time::Instant;

use crate::faults::{Injected, Injector};

/// How long the broker stays down: the load keeps uploading all along.
pub const OUTAGE: Duration = Duration::from_secs(30);

impl Injector<'_> {
    pub(crate) async fn outage(&self) -> anyhow::Result<Injected> {
        let began = Utc::now();
        self.stack
            .broker
            .one()?
            .stop()
            .await
            .map_err(|e| anyhow!(e))?;
        let stopped = Instant::now();
        // The fault is the broker's absence for this long; the uploads meanwhile are the
        // load's, which does not pause.
        tokio::time::sleep(OUTAGE).await;
        let accepted = self.books.answered_since(202, began);
        let refused = self.books.answered_since(503, began);
        let down = stopped.elapsed();
        self.stack
            .broker
            .one()?
            .start()
            .await
            .map_err(|e| anyhow!(e))?;
        let mut injected = Injected::now(format!(
            "broker down {:.0} s, back after {:.1} s more: {accepted} uploads accepted meanwhile, {refused} refused",
            down.as_secs_f64(),
            stopped.elapsed().saturating_sub(down).as_secs_f64()
        ));
        if refused > 0 {
            injected.misses.push(format!(
                "{refused} uploads refused while the broker was down (the outbox should take them)"
            ));
        }
        if accepted == 0 {
            injected
                .misses
                .push("no upload was accepted while the broker was down".to_owned());
        }
        Ok(injected)
    }
}
