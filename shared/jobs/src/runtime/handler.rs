//! What a job handler is, and the three outcomes it can report.
//!
//! `Ok(())` acks the job. [`JobError::Retry`] parks it in a wait queue and runs it again under
//! the kind's [`RetryPolicy`](crate::RetryPolicy); [`JobError::Permanent`] sends it to the
//! dead-letter queue at once. A panic or a timeout counts as a retryable failure.
//! Delivery is at least once, so a handler must be idempotent.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::job::{Job, JobId};
use crate::trace::TraceContext;

/// Why a run failed, and whether running it again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A transient failure (a service down, a timeout): run again later.
    #[error("retryable: {0}")]
    Retry(String),
    /// The job can never succeed (bad input, a rule says no): dead-letter it now.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl JobError {
    /// A retryable failure with a readable reason.
    pub fn retry(reason: impl fmt::Display) -> Self {
        Self::Retry(reason.to_string())
    }

    /// A permanent failure with a readable reason.
    pub fn permanent(reason: impl fmt::Display) -> Self {
        Self::Permanent(reason.to_string())
    }
}

/// What a handler returns.
pub type JobResult = Result<(), JobError>;

/// Turns any error into a [`JobError`] with context: `fetch().await.or_retry("fetching")?`.
pub trait ResultExt<T> {
    /// A failure worth retrying.
    fn or_retry(self, context: &str) -> Result<T, JobError>;
    /// A failure no retry can fix.
    fn or_permanent(self, context: &str) -> Result<T, JobError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn or_retry(self, context: &str) -> Result<T, JobError> {
        self.map_err(|e| JobError::Retry(format!("{context}: {e}")))
    }

    fn or_permanent(self, context: &str) -> Result<T, JobError> {
        self.map_err(|e| JobError::Permanent(format!("{context}: {e}")))
    }
}

/// Facts about the delivery being handled.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's id (stable across retries and redeliveries: key idempotency on it).
    pub id: JobId,
    /// Which run this is, from 1.
    pub attempt: u32,
    /// When the job was first published.
    pub created_at: DateTime<Utc>,
    /// The envelope's schema version.
    pub version: u32,
    /// The job was delivered before (a worker died or lost its connection while it held it).
    pub redelivered: bool,
    /// This run's place in the job's trace (from its `traceparent`): the handler runs in it,
    /// so the jobs it publishes continue the trace, and its log lines carry `trace_id`.
    pub trace: TraceContext,
}

/// Handles jobs of type `J`. Closures `Fn(J, JobContext) -> impl Future<Output = JobResult>`
/// are handlers too.
pub trait Handler<J: Job>: Send + Sync + 'static {
    /// Runs one job.
    fn handle(&self, job: J, ctx: JobContext) -> impl Future<Output = JobResult> + Send;
}

impl<J, F, Fut> Handler<J> for F
where
    J: Job,
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send,
{
    fn handle(&self, job: J, ctx: JobContext) -> impl Future<Output = JobResult> + Send {
        self(job, ctx)
    }
}
