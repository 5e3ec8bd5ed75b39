//! Suspects run alone, so that a job which kills its worker is told apart from its neighbours.
//!
//! A job orphaned twice (its workers were lost while they held it) waits in its kind's
//! quarantine queue. A worker that sees suspects there pauses: it cancels its consumers, lets
//! what it holds finish, then takes suspects one at a time with `basic.get` and runs each with
//! nothing else in the process. A suspect is held only while it runs alone, so a suspect that
//! comes back from quarantine `redelivered` lost its worker while it ran alone: evidence
//! against it, counted in its headers (see `delivery`). Then the worker consumes again.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use super::delivery::Origin;
use super::session::{ConsumerEvent, Context, OpenError, Session, SessionEnd, bounded};
use crate::topology::quarantine_queue;

/// Suspects run in one pause before the worker takes ordinary jobs again for a while.
const SUSPECTS_PER_PAUSE: usize = 20;

impl Session {
    /// Whether any consumed kind has suspects waiting (a passive declare reads the count
    /// without taking anything).
    pub(super) async fn has_suspects(&mut self) -> Result<bool, OpenError> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        for kind in &self.ready {
            let queue = bounded(async {
                let name = quarantine_queue(kind);
                Ok(self
                    .channel
                    .queue_declare(name.as_str().into(), passive, FieldTable::default())
                    .await?)
            })
            .await?;
            if queue.message_count() > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Pauses ordinary consuming and runs up to [`SUSPECTS_PER_PAUSE`] suspects, one at a time,
    /// each alone in the process; then consumes again.
    pub(super) async fn run_suspects(&mut self, ctx: &Arc<Context>) -> Result<(), SessionEnd> {
        tracing::info!("suspects in quarantine: pausing to run them alone");
        if !self.cancel_consumers().await {
            return Err(SessionEnd::Lost(
                "cancelling the consumers failed".to_owned(),
            ));
        }
        self.wait_until_alone(ctx).await?;
        let lost = |error: OpenError| SessionEnd::Lost(error.to_string());
        let mut taken = 0;
        while taken < SUSPECTS_PER_PAUSE {
            let before = taken;
            for kind in self.ready.clone() {
                if ctx.stop.is_cancelled() {
                    return Err(SessionEnd::Stopped);
                }
                let queue = quarantine_queue(kind);
                let got = bounded(async {
                    let options = BasicGetOptions { no_ack: false };
                    Ok(self
                        .channel
                        .basic_get(queue.as_str().into(), options)
                        .await?)
                })
                .await
                .map_err(lost)?;
                if let Some(message) = got {
                    taken += 1;
                    self.spawn(ctx, kind, message.delivery, Origin::Quarantine);
                    self.wait_until_alone(ctx).await?;
                }
            }
            if taken == before {
                break;
            }
        }
        tracing::info!(ran = taken, "suspects done; consuming again");
        bounded(async { Ok(self.subscribe_all(ctx).await?) })
            .await
            .map_err(lost)
    }

    /// Waits until this session runs no job. Deliveries the broker sent before the consumers
    /// were cancelled still arrive, and run too.
    async fn wait_until_alone(&mut self, ctx: &Arc<Context>) -> Result<(), SessionEnd> {
        self.jobs.close();
        let waited = loop {
            tokio::select! {
                biased;
                () = ctx.stop.cancelled() => break Err(SessionEnd::Stopped),
                Some(reason) = self.errors.next() => break Err(SessionEnd::Lost(reason)),
                // `None` once the last stream ended: the loop then waits on the jobs alone.
                event = self.consumers.next(), if !self.consumers.is_empty() => match event {
                    Some(ConsumerEvent::Delivery(kind, Ok(delivery))) => {
                        self.spawn(ctx, kind, delivery, Origin::Work);
                    }
                    Some(ConsumerEvent::Delivery(kind, Err(error))) => {
                        break Err(SessionEnd::Lost(format!("consumer of {kind}: {error}")));
                    }
                    Some(ConsumerEvent::Ended(_)) | None => {}
                },
                () = self.jobs.wait(), if self.consumers.is_empty() => break Ok(()),
            }
        };
        self.jobs.reopen();
        waited
    }
}
