//! One delivery from receipt to settlement: decode, run, then ack, retry or dead-letter.
//!
//! The original delivery is acked only after its outcome is safe: a retry is acked once its
//! copy sits confirmed in a wait queue, a dead letter once its copy sits confirmed in the DLQ.
//! The observer hears the outcome before the ack, so a crash in between repeats it rather
//! than losing it. If a publish fails, the delivery is rejected with requeue (at least once,
//! never zero).
//! A delivery that cannot be acked because its channel died comes back by redelivery.

use std::any::Any;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::handler::{JobContext, JobError, JobResult};
use super::observer::{JobEvent, JobOutcome};
use super::registry::{JobFuture, Registry};
use crate::envelope::IncomingEnvelope;
use crate::headers::{DELIVERY_COUNT, JOB_ATTEMPTS, JOB_ERROR, header_u32};
use crate::job::JobId;
use crate::publisher::{Outgoing, Publisher};
use crate::retry::{RetryDecision, WaitTier};
use crate::topology::{DEAD_LETTER_EXCHANGE, work_queue};

/// What becomes of a delivery.
#[derive(Debug)]
enum Verdict {
    Done,
    Retry {
        attempt: u32,
        tier: WaitTier,
        reason: String,
    },
    DeadLetter {
        attempts: u32,
        reason: String,
    },
}

impl Verdict {
    fn outcome(&self) -> JobOutcome<'_> {
        match self {
            Self::Done => JobOutcome::Succeeded,
            Self::Retry { tier, reason, .. } => JobOutcome::Retrying {
                delay: tier.delay(),
                reason,
            },
            Self::DeadLetter { reason, .. } => JobOutcome::Failed { reason },
        }
    }
}

/// A job ready to run.
struct Ready {
    id: JobId,
    future: JobFuture,
    attempt: u32,
    timeout: Duration,
    retry: crate::RetryPolicy,
}

/// Runs deliveries through their handlers and settles them.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub(crate) registry: Registry,
    pub(crate) publisher: Publisher,
    pub(crate) max_redeliveries: u32,
}

impl Dispatcher {
    /// Handles one delivery from the queue of `kind` to the end.
    pub(crate) async fn process(&self, kind: &str, delivery: Delivery) {
        let span = tracing::info_span!(
            "job",
            kind,
            id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or("-"),
        );
        async {
            let (verdict, id, attempt) = match self.prepare(kind, &delivery) {
                Ok(ready) => {
                    let (id, attempt) = (Some(ready.id), ready.attempt);
                    self.notify(kind, id, attempt, &delivery, JobOutcome::Started)
                        .await;
                    (run(ready).await, id, attempt)
                }
                Err((verdict, id)) => (verdict, id, 0),
            };
            self.settle(kind, id, attempt, &delivery, &verdict).await;
        }
        .instrument(span)
        .await;
    }

    async fn notify(
        &self,
        kind: &str,
        id: Option<JobId>,
        attempt: u32,
        delivery: &Delivery,
        outcome: JobOutcome<'_>,
    ) {
        if let Some(observer) = self.registry.observer() {
            let event = JobEvent {
                kind,
                id,
                attempt,
                body: &delivery.data,
                outcome,
            };
            observer.observe(event).await;
        }
    }

    /// Everything that can be decided without running the handler; a refusal carries the
    /// job's id when the envelope could be read.
    fn prepare(&self, kind: &str, delivery: &Delivery) -> Result<Ready, (Verdict, Option<JobId>)> {
        let headers = delivery.properties.headers().as_ref();
        let prior = header_u32(headers, JOB_ATTEMPTS).unwrap_or(0);
        let refuse = |reason: String, id: Option<JobId>| {
            (
                Verdict::DeadLetter {
                    attempts: prior,
                    reason,
                },
                id,
            )
        };
        let envelope = IncomingEnvelope::parse(&delivery.data).map_err(|e| {
            refuse(
                format!("malformed job: the body is not a valid envelope: {e}"),
                None,
            )
        })?;
        let dead = |reason: String| refuse(reason, Some(envelope.id));
        let entry = self
            .registry
            .get(kind)
            .filter(|_| envelope.kind == kind)
            .ok_or_else(|| {
                dead(format!(
                    "unknown kind `{}` on queue {}",
                    envelope.kind,
                    work_queue(kind)
                ))
            })?;
        let (min, max) = entry.versions;
        if !(min..=max).contains(&envelope.version) {
            return Err(dead(format!(
                "unsupported version {} of `{kind}` (this worker reads {min} to {max})",
                envelope.version
            )));
        }
        let redeliveries = header_u32(headers, DELIVERY_COUNT).unwrap_or(0);
        if redeliveries >= self.max_redeliveries {
            return Err(dead(format!(
                "delivered {redeliveries} times without an outcome: it may crash or hang its worker"
            )));
        }
        let ctx = JobContext {
            id: envelope.id,
            attempt: prior + 1,
            created_at: envelope.created_at,
            version: envelope.version,
            redelivered: delivery.redelivered,
        };
        let future = entry.start(envelope.payload, ctx).map_err(|e| {
            dead(format!(
                "payload does not fit `{kind}` v{}: {e}",
                envelope.version
            ))
        })?;
        Ok(Ready {
            id: envelope.id,
            future,
            attempt: prior + 1,
            timeout: entry.timeout,
            retry: entry.retry,
        })
    }

    /// Parks a copy if the verdict needs one, reports the outcome, then acks. The ack comes
    /// last: a worker that dies before it has the job redelivered, so the outcome is run and
    /// reported again rather than acked and never recorded.
    async fn settle(
        &self,
        kind: &str,
        id: Option<JobId>,
        attempt: u32,
        delivery: &Delivery,
        verdict: &Verdict,
    ) {
        if self.park(kind, delivery, verdict).await {
            self.notify(kind, id, attempt, delivery, verdict.outcome())
                .await;
            ack(delivery).await;
        }
    }

    /// Publishes the copy a retry or a dead letter needs, confirmed; on failure rejects the
    /// delivery with requeue. True when the delivery may be acked.
    async fn park(&self, kind: &str, delivery: &Delivery, verdict: &Verdict) -> bool {
        let (exchange, attempts, reason) = match verdict {
            Verdict::Done => {
                tracing::info!("done");
                return true;
            }
            Verdict::Retry {
                attempt,
                tier,
                reason,
            } => {
                tracing::warn!(attempt, delay = ?tier.delay(), %reason, "failed; will retry");
                (tier.queue_name(), *attempt, reason)
            }
            Verdict::DeadLetter { attempts, reason } => {
                tracing::error!(attempts, %reason, "dead-lettered");
                (DEAD_LETTER_EXCHANGE.to_owned(), *attempts, reason)
            }
        };
        let headers = outcome_headers(delivery.properties.headers().as_ref(), attempts, reason);
        let properties = delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(crate::envelope::PERSISTENT);
        let parked = Outgoing {
            exchange: &exchange,
            routing_key: kind,
            body: &delivery.data,
            properties,
        };
        match self.publisher.send(parked).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "could not park the job; requeueing it");
                let requeue = BasicRejectOptions { requeue: true };
                if let Err(error) = delivery.acker.reject(requeue).await {
                    tracing::info!(%error, "reject failed (channel gone); the broker redelivers it");
                }
                false
            }
        }
    }
}

/// Runs the handler in its own task, so a panic is caught and a timeout can abort it.
async fn run(ready: Ready) -> Verdict {
    // Dropping the handle aborts the handler, e.g. when the shutdown deadline abandons it.
    let mut task = AbortOnDropHandle::new(tokio::spawn(ready.future));
    let result: JobResult = match tokio::time::timeout(ready.timeout, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => Err(JobError::Retry(format!(
            "handler panicked: {}",
            panic_message(join.into_panic())
        ))),
        Ok(Err(join)) => Err(JobError::Retry(format!("handler was cancelled: {join}"))),
        Err(_) => {
            task.abort();
            Err(JobError::Retry(format!(
                "timed out after {:?}",
                ready.timeout
            )))
        }
    };
    let attempt = ready.attempt;
    match result {
        Ok(()) => Verdict::Done,
        Err(JobError::Permanent(reason)) => Verdict::DeadLetter {
            attempts: attempt,
            reason,
        },
        Err(JobError::Retry(reason)) => match ready.retry.after_failure(attempt) {
            RetryDecision::RetryIn(tier) => Verdict::Retry {
                attempt,
                tier,
                reason,
            },
            RetryDecision::GiveUp => Verdict::DeadLetter {
                attempts: attempt,
                reason: format!("gave up after {attempt} attempts: {reason}"),
            },
        },
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The original headers with the outcome written in. The broker's delivery count is dropped:
/// the copy is a new message, and a stale count would make it look like a crash loop.
fn outcome_headers(original: Option<&FieldTable>, attempts: u32, reason: &str) -> FieldTable {
    let mut headers = FieldTable::default();
    for (key, value) in original.into_iter().flat_map(FieldTable::inner) {
        if key.as_str() != DELIVERY_COUNT {
            headers.insert(key.clone(), value.clone());
        }
    }
    headers.insert(
        JOB_ATTEMPTS.into(),
        AMQPValue::LongInt(attempts.try_into().unwrap_or(i32::MAX)),
    );
    headers.insert(JOB_ERROR.into(), AMQPValue::LongString(reason.into()));
    headers
}

async fn ack(delivery: &Delivery) {
    if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
        // Delivery tags belong to their channel: after a reconnect the old tag cannot be
        // acked, and the broker redelivers the job to whichever consumer is alive.
        tracing::info!(%error, "ack failed (channel gone); the broker redelivers the job");
    }
}
