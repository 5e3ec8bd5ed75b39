//! A window on each job's life, for status pages and metrics: started, succeeded, retrying,
//! failed. The runtime reports; a domain decides what to record.
//!
//! A final event is reported after a retry's or dead letter's copy is confirmed and before
//! the original is acked: a worker that dies in between has the job redelivered, so the
//! last word is reported again, never lost. An observer that cannot record a final event
//! (its store is down) returns an error: the runtime tries again with backoff and acks only
//! once it is recorded, or returns the job to its queue when it may hold it no longer. A
//! failed `Started` or `Stalled` event (a progress hint) is only logged. Delivery is at least
//! once, so an observer may see a job start again after it succeeded.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::envelope::IncomingEnvelope;
use crate::job::JobId;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome<'a> {
    /// A run began.
    Started,
    /// The run succeeded; the job is acked next.
    Succeeded,
    /// The run failed and the job waits `delay` for its next attempt.
    Retrying {
        /// How long it waits.
        delay: Duration,
        /// Why the run failed.
        reason: &'a str,
    },
    /// The job is in its dead-letter queue: it failed permanently, ran out of attempts, or
    /// could not be read.
    Failed {
        /// Why.
        reason: &'a str,
    },
    /// The worker could not park the job's retry or dead letter (the broker blocks, refuses or
    /// does not confirm): it keeps the job and tries again with backoff. A later event says
    /// how it ended; if the worker has to let go first, the job goes back to its queue.
    Stalled {
        /// Why parking failed.
        reason: &'a str,
    },
    /// A worker was lost while it held the job (a crash, a lost connection, a broker
    /// restart): the job is queued again, and after a second loss it runs alone.
    Requeued {
        /// What happened.
        reason: &'a str,
    },
}

/// One event in a job's life.
#[derive(Debug, Clone, Copy)]
pub struct JobEvent<'a> {
    /// The queue's kind.
    pub kind: &'a str,
    /// The envelope's id, when the body could be read.
    pub id: Option<JobId>,
    /// The run this is about (0 for a job dead-lettered before it ran).
    pub attempt: u32,
    /// The whole message body (the envelope); [`JobEvent::payload`] reads its payload.
    pub body: &'a [u8],
    /// What happened.
    pub outcome: JobOutcome<'a>,
}

impl JobEvent<'_> {
    /// The job's payload read as `T` (for an observer, the few fields it records, e.g. the
    /// id of what the job is about); `None` when the body is not a job envelope or its
    /// payload is not a `T`. Observers never need to know the envelope's layout.
    #[must_use]
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let envelope = IncomingEnvelope::parse(self.body).ok()?;
        serde_json::from_str(envelope.payload.get()).ok()
    }
}

/// Why an observer could not record an event.
pub type ObserveError = Box<dyn std::error::Error + Send + Sync>;

/// What [`JobObserver::observe`] returns.
pub type Observed<'a> = Pin<Box<dyn Future<Output = Result<(), ObserveError>> + Send + 'a>>;

/// Receives every job's events.
pub trait JobObserver: Send + Sync + 'static {
    /// Records one event. An error for a final event keeps the job unacked and is tried again.
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a>;
}

impl JobOutcome<'_> {
    /// Whether this event ends the delivery (the ack waits for it to be recorded), rather
    /// than being a progress hint.
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Started | Self::Stalled { .. })
    }
}
