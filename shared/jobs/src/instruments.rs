//! The metrics the machinery records, named once here, through the `metrics` facade only:
//! which exporter turns them into what (Prometheus, or nothing) is the binary's choice, and
//! without a recorder installed every call is a no-op.

use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::{Gauge, histogram};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

const PUBLISHED: &str = "jobs_published_total";
const CONFIRM_SECONDS: &str = "job_publish_confirm_seconds";
const HANDLED: &str = "jobs_handled_total";
const HANDLER_SECONDS: &str = "job_handler_duration_seconds";
const QUEUE_WAIT_SECONDS: &str = "job_queue_wait_seconds";
const IN_FLIGHT: &str = "jobs_in_flight";
const RECONNECTS: &str = "amqp_reconnects_total";
const OUTBOX_BACKLOG: &str = "outbox_backlog_jobs";
const OUTBOX_OLDEST: &str = "outbox_oldest_seconds";

/// Gives each of the machinery's metrics its help text and unit. Call it once after
/// installing a recorder; metrics recorded before it still count.
pub fn describe_metrics() {
    describe_counter!(
        PUBLISHED,
        "Jobs the broker confirmed, by kind (copies parked by the runtime for retries and dead letters not included)"
    );
    describe_histogram!(
        CONFIRM_SECONDS,
        Unit::Seconds,
        "From writing a message to the broker's confirm"
    );
    describe_counter!(
        HANDLED,
        "Deliveries settled, by kind and outcome: succeeded, retried, dead_lettered, requeued (a lost worker's job queued again)"
    );
    describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "Run time of a job's handler, timeouts and panics included"
    );
    describe_histogram!(
        QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "From a job's creation to the start of a run (a retry's includes its earlier runs and waits)"
    );
    describe_gauge!(
        IN_FLIGHT,
        "Deliveries this process holds, from receipt to ack, by kind"
    );
    describe_counter!(
        RECONNECTS,
        "AMQP connections established again after one was lost, by role: worker (its consuming session) or publisher (a confirm lane)"
    );
    describe_gauge!(
        OUTBOX_BACKLOG,
        "Jobs in the outbox not yet published, as the relay last read it"
    );
    describe_gauge!(
        OUTBOX_OLDEST,
        Unit::Seconds,
        "How long the oldest unpublished outbox job has waited, as the relay last read it"
    );
}

/// A job the broker confirmed.
pub(crate) fn published(kind: &str) {
    counter!(PUBLISHED, "kind" => kind.to_owned()).increment(1);
}

/// From writing a message to its confirm.
pub(crate) fn confirmed_after(latency: Duration) {
    histogram!(CONFIRM_SECONDS).record(latency);
}

/// How a delivery was settled, as `jobs_handled_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    Succeeded,
    Retried,
    DeadLettered,
    Requeued,
}

impl Handled {
    fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::Requeued => "requeued",
        }
    }
}

/// A delivery settled (its copy parked if it needed one, its outcome recorded, acked).
pub(crate) fn handled(kind: &'static str, outcome: Handled) {
    counter!(HANDLED, "kind" => kind, "outcome" => outcome.label()).increment(1);
}

/// A handler's run time.
pub(crate) fn handler_ran(kind: &'static str, took: Duration) {
    histogram!(HANDLER_SECONDS, "kind" => kind).record(took);
}

/// A run starts: how long since the job was created (zero if the clocks disagree).
pub(crate) fn run_starts(kind: &'static str, created_at: DateTime<Utc>) {
    let waited = (Utc::now() - created_at).to_std().unwrap_or_default();
    histogram!(QUEUE_WAIT_SECONDS, "kind" => kind).record(waited);
}

/// Counts a delivery in `jobs_in_flight` while it lives.
#[derive(Debug)]
pub(crate) struct InFlight(Gauge);

impl InFlight {
    pub(crate) fn start(kind: &'static str) -> Self {
        let gauge = gauge!(IN_FLIGHT, "kind" => kind);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    // A drop, not a call at the end: a job abandoned at the shutdown deadline or cut off by
    // a lost connection is dropped mid-way and must leave the gauge too.
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Which side of the library lost and re-established a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Worker,
    Publisher,
}

/// A connection established again after one was lost.
pub(crate) fn reconnected(role: Role) {
    let role = match role {
        Role::Worker => "worker",
        Role::Publisher => "publisher",
    };
    counter!(RECONNECTS, "role" => role).increment(1);
}

/// The outbox's backlog as last read.
#[cfg_attr(not(feature = "outbox"), allow(dead_code))]
pub(crate) fn outbox_backlog(waiting: i64, oldest: Duration) {
    // Precision is lost only past 2^53 jobs.
    #[allow(clippy::cast_precision_loss)]
    gauge!(OUTBOX_BACKLOG).set(waiting as f64);
    gauge!(OUTBOX_OLDEST).set(oldest.as_secs_f64());
}
