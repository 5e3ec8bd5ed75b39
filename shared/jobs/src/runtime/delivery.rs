//! One delivery from receipt to a verdict: is it too large, was it orphaned by a lost worker,
//! can it be read; then run it. What becomes of the verdict is `settle`'s business.
//!
//! A worker that vanishes returns every delivery it held to its queue, flagged `redelivered`.
//! The runtime cannot know whether such a job was running or what killed the worker, so it
//! counts the loss in the job's own headers (RabbitMQ's count differs between versions and,
//! from 4.3, ignores lost consumers) and requeues it; after a second loss the job goes to its
//! quarantine queue, where it runs alone. Only a worker lost while a job ran alone is evidence
//! against that job, and only `max_crashes` such losses dead-letter it.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use lapin::message::Delivery;
use tokio::time::Instant;
use tracing::Instrument;

use super::handler::{JobContext, JobError, JobResult};
use super::observer::JobOutcome;
use super::registry::{JobFuture, Registry};
use crate::delay;
use crate::envelope::IncomingEnvelope;
use crate::headers::{JOB_ATTEMPTS, JOB_CRASHES, JOB_ORPHANED, header_u32};
use crate::instruments::{self, Handled, InFlight};
use crate::job::JobId;
use crate::publisher::Publisher;
use crate::retry::{RetryDecision, WaitTier};
use crate::topology::work_queue;
use crate::trace::TraceContext;

/// Losses of its worker after which a job is quarantined: one loss is most often a
/// neighbour's fault (or the network's); two in a row deserve a run alone.
const QUARANTINE_AFTER: u32 = 2;

/// Which queue a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The kind's work queue, consumed with others.
    Work,
    /// The kind's quarantine queue: taken with `basic.get` and run alone.
    Quarantine,
}

/// A delivery as the worker received it.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) kind: &'static str,
    pub(crate) delivery: Delivery,
    pub(crate) origin: Origin,
    /// When the worker took it: the broker's `consumer_timeout` runs from about here.
    pub(crate) at: Instant,
}

/// What becomes of a delivery.
#[derive(Debug)]
pub(crate) enum Verdict {
    Done,
    /// A delayed job that came back before it is due: parked again in `tier`, unrun.
    Wait {
        tier: WaitTier,
    },
    Retry {
        attempt: u32,
        tier: WaitTier,
        reason: String,
    },
    DeadLetter {
        attempts: u32,
        reason: String,
    },
    /// Published again to the work queue (`quarantine: false`) or the quarantine queue, with
    /// the runtime's count of lost workers in `header`.
    Requeue {
        quarantine: bool,
        header: (&'static str, u32),
        reason: String,
    },
}

impl Verdict {
    /// What the observer hears; nothing for a delayed job that is not due (it did not run).
    pub(crate) fn outcome(&self) -> Option<JobOutcome<'_>> {
        Some(match self {
            Self::Wait { .. } => return None,
            Self::Done => JobOutcome::Succeeded,
            Self::Retry { tier, reason, .. } => JobOutcome::Retrying {
                delay: tier.delay(),
                reason,
            },
            Self::DeadLetter { reason, .. } => JobOutcome::Failed { reason },
            Self::Requeue { reason, .. } => JobOutcome::Requeued { reason },
        })
    }

    /// How `jobs_handled_total` counts it once settled; not at all for a delayed job parked
    /// again before it is due (it did not run).
    pub(crate) fn handled(&self) -> Option<Handled> {
        Some(match self {
            Self::Wait { .. } => return None,
            Self::Done => Handled::Succeeded,
            Self::Retry { .. } => Handled::Retried,
            Self::DeadLetter { .. } => Handled::DeadLettered,
            Self::Requeue { .. } => Handled::Requeued,
        })
    }
}

/// A job ready to run.
struct Ready {
    id: JobId,
    future: JobFuture,
    attempt: u32,
    timeout: Duration,
    retry: crate::RetryPolicy,
    created_at: DateTime<Utc>,
    trace: TraceContext,
}

/// Runs deliveries through their handlers and settles them.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub(crate) registry: Registry,
    pub(crate) publisher: Publisher,
    pub(crate) max_crashes: u32,
    /// Incoming messages over this size are dead-lettered unread.
    pub(crate) max_message_size: usize,
    /// How long a delivery may be held before it must be settled or returned.
    pub(crate) hold_limit: Duration,
}

impl Dispatcher {
    /// Handles one delivery to the end.
    pub(crate) async fn process(&self, received: Received) {
        let properties = &received.delivery.properties;
        // Every line about this delivery carries its trace, whether or not it runs.
        let trace = TraceContext::for_run(properties.headers().as_ref());
        let span = tracing::info_span!(
            "job",
            kind = received.kind,
            id = properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or("-"),
            trace_id = %trace.trace_id(),
        );
        let _in_flight = InFlight::start(received.kind);
        async {
            let prior = header_u32(properties.headers().as_ref(), JOB_ATTEMPTS).unwrap_or(0);
            let (verdict, id, attempt) = match self.triage(&received, prior, trace) {
                Ok(ready) => {
                    let (id, attempt) = (Some(ready.id), ready.attempt);
                    instruments::run_starts(received.kind, ready.created_at);
                    // A progress hint: a failure to record it is logged, not waited on.
                    self.notify(&received, id, attempt, JobOutcome::Started)
                        .await;
                    let started = Instant::now();
                    let verdict = run(ready).await;
                    instruments::handler_ran(received.kind, started.elapsed());
                    (verdict, id, attempt)
                }
                Err((verdict, id)) => (verdict, id, prior),
            };
            self.settle(&received, id, attempt, &verdict).await;
        }
        .instrument(span)
        .await;
    }

    /// Everything decided before the handler runs; a verdict without running carries the
    /// job's id when the envelope could be read.
    fn triage(
        &self,
        received: &Received,
        prior: u32,
        trace: TraceContext,
    ) -> Result<Ready, (Verdict, Option<JobId>)> {
        let size = received.delivery.data.len();
        if size > self.max_message_size {
            let reason = format!(
                "the message is {size} bytes, over the size limit of {} bytes (MAX_MESSAGE_SIZE)",
                self.max_message_size
            );
            return Err((dead_letter(prior, reason), None));
        }
        let envelope = IncomingEnvelope::parse(&received.delivery.data);
        let id = envelope.as_ref().ok().map(|e| e.id);
        if let Some(verdict) = self.orphan_verdict(received, prior) {
            return Err((verdict, id));
        }
        let envelope = envelope.map_err(|e| {
            let reason = format!("malformed job: the body is not a valid envelope: {e}");
            (dead_letter(prior, reason), None)
        })?;
        // A requeued orphan is a fresh message, but the job was delivered before.
        let headers = received.delivery.properties.headers().as_ref();
        if let Some(tier) = delay::tier_for(headers, Utc::now()) {
            return Err((Verdict::Wait { tier }, id));
        }
        let redelivered =
            received.delivery.redelivered || header_u32(headers, JOB_ORPHANED).is_some();
        self.ready(received.kind, envelope, prior, redelivered, trace)
            .map_err(|reason| (dead_letter(prior, reason), id))
    }

    /// For a delivery a lost worker returned: requeue it, quarantine it, or (lost while it ran
    /// alone too often) dead-letter it. `None` for a first delivery.
    fn orphan_verdict(&self, received: &Received, prior: u32) -> Option<Verdict> {
        if !received.delivery.redelivered {
            return None;
        }
        let headers = received.delivery.properties.headers().as_ref();
        let count = |name| header_u32(headers, name).unwrap_or(0).saturating_add(1);
        Some(match received.origin {
            Origin::Work => {
                let orphaned = count(JOB_ORPHANED);
                let quarantine = orphaned >= QUARANTINE_AFTER;
                let then = if quarantine {
                    "quarantined: it runs alone next"
                } else {
                    "queued again"
                };
                Verdict::Requeue {
                    quarantine,
                    header: (JOB_ORPHANED, orphaned),
                    reason: format!("a worker was lost while holding it ({orphaned}×); {then}"),
                }
            }
            Origin::Quarantine => {
                let crashes = count(JOB_CRASHES);
                if crashes >= self.max_crashes {
                    return Some(dead_letter(
                        prior,
                        format!(
                            "lost its worker {crashes} times while it ran alone: \
                             it crashes or hangs its worker"
                        ),
                    ));
                }
                Verdict::Requeue {
                    quarantine: true,
                    header: (JOB_CRASHES, crashes),
                    reason: format!(
                        "lost its worker while it ran alone ({crashes} of {}); quarantined again",
                        self.max_crashes
                    ),
                }
            }
        })
    }

    /// The handler's future, or why the job cannot run here.
    fn ready(
        &self,
        kind: &str,
        envelope: IncomingEnvelope<'_>,
        prior: u32,
        redelivered: bool,
        trace: TraceContext,
    ) -> Result<Ready, String> {
        let entry = self
            .registry
            .get(kind)
            .filter(|_| envelope.kind == kind)
            .ok_or_else(|| {
                format!(
                    "unknown kind `{}` on queue {}",
                    envelope.kind,
                    work_queue(kind)
                )
            })?;
        let (min, max) = entry.versions;
        if !(min..=max).contains(&envelope.version) {
            return Err(format!(
                "unsupported version {} of `{kind}` (this worker reads {min} to {max})",
                envelope.version
            ));
        }
        let attempt = prior.saturating_add(1);
        let ctx = JobContext {
            id: envelope.id,
            attempt,
            created_at: envelope.created_at,
            version: envelope.version,
            redelivered,
            trace,
        };
        let future = entry
            .start(envelope.payload, ctx)
            .map_err(|e| format!("payload does not fit `{kind}` v{}: {e}", envelope.version))?;
        Ok(Ready {
            id: envelope.id,
            future,
            attempt,
            timeout: entry.timeout,
            retry: entry.retry,
            created_at: envelope.created_at,
            trace,
        })
    }
}

fn dead_letter(attempts: u32, reason: String) -> Verdict {
    Verdict::DeadLetter { attempts, reason }
}

/// Runs the handler with its timeout, catching a panic. It runs inside the delivery's own
/// task (no second spawn per job): dropping this future, e.g. when the shutdown deadline
/// abandons the job, drops the handler with it.
async fn run(ready: Ready) -> Verdict {
    // In the run's trace: the jobs the handler publishes continue it.
    let handler = AssertUnwindSafe(ready.trace.scope(ready.future)).catch_unwind();
    let result: JobResult = match tokio::time::timeout(ready.timeout, handler).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(JobError::Retry(format!(
            "handler panicked: {}",
            panic_message(panic)
        ))),
        Err(_) => Err(JobError::Retry(format!(
            "timed out after {:?}",
            ready.timeout
        ))),
    };
    let attempt = ready.attempt;
    match result {
        Ok(()) => Verdict::Done,
        Err(JobError::Permanent(reason)) => dead_letter(attempt, reason),
        Err(JobError::Retry(reason)) => match ready.retry.after_failure(attempt) {
            RetryDecision::RetryIn(tier) => Verdict::Retry {
                attempt,
                tier,
                reason,
            },
            RetryDecision::GiveUp => dead_letter(
                attempt,
                format!("gave up after {attempt} attempts: {reason}"),
            ),
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
