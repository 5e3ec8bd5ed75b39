//! Settling a verdict: park the copy it needs (a retry in a wait queue, a dead letter, a
//! requeued or quarantined orphan), report the outcome, then ack.
//!
//! The original is acked only once its copy is confirmed and the observer recorded the
//! outcome, so a crash in between repeats it rather than losing it. A copy that cannot
//! be published (an alarm, a nack, no route, no confirm) is tried again with backoff while
//! the worker keeps the delivery, and the observer hears that the job is stalled; never a hot
//! loop. If the broker's `consumer_timeout` would run out first, the delivery is returned to
//! its queue instead (redelivered, it counts as orphaned).

use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio::time::Instant;

use super::delivery::{Dispatcher, Received, Verdict};
use super::observer::{JobEvent, JobOutcome};
use crate::backoff::Backoff;
use crate::envelope::PERSISTENT;
use crate::headers::{DELIVERY_COUNT, JOB_ATTEMPTS, JOB_ERROR, JOB_FAILED_AT};
use crate::instruments;
use crate::job::JobId;
use crate::publisher::Outgoing;
use crate::topology::{DEAD_LETTER_EXCHANGE, EXCHANGE, QUARANTINE_EXCHANGE};

/// The longest an observer may take to record one event: it writes to a domain's store,
/// which may hang, and the delivery is held meanwhile.
pub(crate) const OBSERVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits between attempts to park a copy or record an outcome: from half a second,
/// doubling, to half a minute.
fn settle_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
}

impl Dispatcher {
    /// Parks a copy if the verdict needs one, reports the outcome, then acks. The ack comes
    /// last: a worker that dies before it has the job redelivered rather than lost.
    pub(crate) async fn settle(
        &self,
        received: &Received,
        id: Option<JobId>,
        attempt: u32,
        verdict: &Verdict,
    ) {
        log_verdict(verdict);
        if let Some((exchange, headers)) = copy_of(verdict, &received.delivery) {
            let properties = received
                .delivery
                .properties
                .clone()
                .with_headers(headers)
                .with_delivery_mode(PERSISTENT);
            let copy = Outgoing {
                exchange: &exchange,
                routing_key: received.kind,
                body: &received.delivery.data,
                properties,
                new_job: false,
            };
            if !self.park(received, id, attempt, copy).await {
                return;
            }
        }
        let recorded = match verdict.outcome() {
            Some(outcome) => self.record(received, id, attempt, outcome).await,
            None => true,
        };
        if recorded {
            // Counted once acked: a job whose ack was lost is settled again when redelivered.
            if ack(&received.delivery).await
                && let Some(handled) = verdict.handled()
            {
                instruments::handled(received.kind, handled);
            }
        } else {
            // Its outcome is not recorded: redelivered, the job runs again (handlers are
            // idempotent) and its outcome is recorded then.
            release(&received.delivery).await;
        }
    }

    /// Publishes the copy, confirmed, trying again with backoff until it is in or the hold
    /// limit comes near (leaving the observer its time); then returns the delivery to its
    /// queue. True when it may be acked.
    async fn park(
        &self,
        received: &Received,
        id: Option<JobId>,
        attempt: u32,
        copy: Outgoing<'_>,
    ) -> bool {
        let deadline = received.at + self.hold_limit.saturating_sub(OBSERVER_TIMEOUT);
        let mut backoff = settle_backoff();
        let mut stalled = false;
        loop {
            let budget = deadline.saturating_duration_since(Instant::now());
            let error = match tokio::time::timeout(budget, self.publisher.send(copy.clone())).await
            {
                Ok(Ok(())) => return true,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no confirm within {budget:?}"),
            };
            let reason = format!(
                "cannot park it in {} ({error}); the worker keeps it and tries again",
                copy.exchange
            );
            tracing::warn!(%reason, "job stalled");
            if !stalled {
                stalled = true;
                let outcome = JobOutcome::Stalled { reason: &reason };
                // A progress hint: the outcome that follows is the one that must be recorded.
                let _ = self.notify(received, id, attempt, outcome).await;
            }
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                tracing::error!(
                    held = ?received.at.elapsed(),
                    "held as long as the broker's consumer_timeout allows; returning it to its queue"
                );
                release(&received.delivery).await;
                return false;
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Has the observer, if any, record a final outcome, trying again with backoff while it
    /// fails (its store is down) and the delivery may still be held. True when recorded.
    async fn record(
        &self,
        received: &Received,
        id: Option<JobId>,
        attempt: u32,
        outcome: JobOutcome<'_>,
    ) -> bool {
        let deadline = received.at + self.hold_limit;
        let mut backoff = settle_backoff();
        loop {
            if self.notify(received, id, attempt, outcome).await {
                return true;
            }
            let delay = backoff.next_delay();
            if Instant::now() + delay + OBSERVER_TIMEOUT >= deadline {
                tracing::error!(
                    held = ?received.at.elapsed(),
                    "the job's outcome could not be recorded for as long as it may be held; returning it to its queue"
                );
                return false;
            }
            tracing::warn!(retry_in = ?delay, "the job's outcome is not recorded yet; the ack waits");
            tokio::time::sleep(delay).await;
        }
    }

    /// Tells the kind's observer, if any, within [`OBSERVER_TIMEOUT`]; true when it recorded
    /// the event (or there is none). A failure is logged.
    pub(crate) async fn notify(
        &self,
        received: &Received,
        id: Option<JobId>,
        attempt: u32,
        outcome: JobOutcome<'_>,
    ) -> bool {
        let observer = self.registry.get(received.kind);
        let Some(observer) = observer.and_then(|entry| entry.observer.as_deref()) else {
            return true;
        };
        let event = JobEvent {
            kind: received.kind,
            id,
            attempt,
            body: &received.delivery.data,
            outcome,
        };
        match tokio::time::timeout(OBSERVER_TIMEOUT, observer.observe(event)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, final_event = outcome.is_final(), "the job observer could not record the event");
                false
            }
            Err(_) => {
                tracing::warn!(timeout = ?OBSERVER_TIMEOUT, final_event = outcome.is_final(), "the job observer did not record the event in time");
                false
            }
        }
    }
}

fn log_verdict(verdict: &Verdict) {
    match verdict {
        Verdict::Done => tracing::info!("done"),
        Verdict::Wait { tier } => tracing::debug!(wait = ?tier.delay(), "not due yet; waits again"),
        Verdict::Retry {
            attempt,
            tier,
            reason,
        } => tracing::warn!(attempt, delay = ?tier.delay(), %reason, "failed; will retry"),
        Verdict::DeadLetter { attempts, reason } => {
            tracing::error!(attempts, %reason, "dead-lettered");
        }
        Verdict::Requeue { reason, .. } => tracing::warn!(%reason, "orphaned"),
    }
}

/// The exchange and headers of the copy a verdict needs, if any.
fn copy_of(verdict: &Verdict, delivery: &Delivery) -> Option<(String, FieldTable)> {
    let original = delivery.properties.headers().as_ref();
    match verdict {
        Verdict::Done => None,
        Verdict::Wait { tier } => Some((tier.queue_name(), without_delivery_count(original))),
        Verdict::Retry {
            attempt,
            tier,
            reason,
        } => Some((
            tier.queue_name(),
            outcome_headers(original, *attempt, reason),
        )),
        Verdict::DeadLetter { attempts, reason } => Some((
            DEAD_LETTER_EXCHANGE.to_owned(),
            outcome_headers(original, *attempts, reason),
        )),
        Verdict::Requeue {
            quarantine,
            header: (name, count),
            ..
        } => {
            let mut headers = without_delivery_count(original);
            headers.insert((*name).into(), AMQPValue::LongUInt(*count));
            let exchange = if *quarantine {
                QUARANTINE_EXCHANGE
            } else {
                EXCHANGE
            };
            Some((exchange.to_owned(), headers))
        }
    }
}

/// The original headers without the broker's delivery count: the copy is a new message, and
/// a stale count would only mislead.
fn without_delivery_count(original: Option<&FieldTable>) -> FieldTable {
    let mut headers = FieldTable::default();
    for (key, value) in original.into_iter().flat_map(FieldTable::inner) {
        if key.as_str() != DELIVERY_COUNT {
            headers.insert(key.clone(), value.clone());
        }
    }
    headers
}

/// The original headers with the outcome written in.
fn outcome_headers(original: Option<&FieldTable>, attempts: u32, reason: &str) -> FieldTable {
    let mut headers = without_delivery_count(original);
    headers.insert(
        JOB_ATTEMPTS.into(),
        AMQPValue::LongInt(attempts.try_into().unwrap_or(i32::MAX)),
    );
    headers.insert(JOB_ERROR.into(), AMQPValue::LongString(reason.into()));
    headers.insert(
        JOB_FAILED_AT.into(),
        AMQPValue::LongLongInt(chrono::Utc::now().timestamp_millis()),
    );
    headers
}

/// Acks a delivery; true when the ack was sent. Delivery tags belong to their channel: after
/// a reconnect the old tag cannot be acked, and the broker redelivers the job to whichever
/// consumer is alive.
async fn ack(delivery: &Delivery) -> bool {
    match delivery.acker.ack(BasicAckOptions::default()).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!("ack not sent: its channel is gone; the broker redelivers the job");
            false
        }
        Err(error) => {
            tracing::info!(%error, "ack failed (channel gone); the broker redelivers the job");
            false
        }
    }
}

/// Returns a delivery to its queue. A nack with requeue, which from RabbitMQ 4.3 does not
/// count towards the queue's delivery limit.
async fn release(delivery: &Delivery) {
    let requeue = BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    };
    match delivery.acker.nack(requeue).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("nack not sent: its channel is gone; the broker redelivers the job")
        }
        Err(error) => {
            tracing::info!(%error, "nack failed (channel gone); the broker redelivers the job")
        }
    }
}
