//! Typed background jobs over RabbitMQ.
//!
//! The machinery ([`Job`], the envelope, [`Topology`], [`Publisher`], [`Worker`]) knows
//! nothing of any domain: each domain is a crate of its own beside this one that defines its
//! job types, handlers and observer, so a new domain never touches the machinery.

mod backoff;
mod catalog;
mod cli;
mod connection;
mod cpu;
mod dead_letters;
mod definitions;
mod delay;
mod envelope;
mod headers;
mod instruments;
mod job;
mod nodes;
#[cfg(feature = "outbox")]
pub mod outbox;
mod publisher;
mod retry;
mod runtime;
mod shutdown;
mod telemetry;
#[cfg(test)]
mod test_jobs;
mod topology;
mod trace;

pub use backoff::Backoff;
pub use catalog::{Catalog, CatalogError};
pub use cli::parse_args;
pub use connection::{AmqpSettings, parse_duration};
pub use cpu::{CpuPool, CpuTaskError};
pub use dead_letters::{DeadLetter, DeadLetterError, DeadLetters, Filter, KindSummary, Replayed};
pub use definitions::{BrokerUser, Role, broker_definitions, password_hash};
pub use envelope::{CONTENT_TYPE, EncodedJob};
pub use headers::{
    DELIVERY_COUNT, JOB_ATTEMPTS, JOB_CRASHES, JOB_ERROR, JOB_FAILED_AT, JOB_NOT_BEFORE,
    JOB_ORPHANED, JOB_REPLAYED, header_i64, header_str, header_u32,
};
pub use instruments::describe_metrics;
pub use job::{Job, JobId, is_valid_kind};
pub use nodes::{Nodes, parse_amqp_url, without_password};
pub use publisher::{PublishError, Publisher, PublisherSettings};
pub use retry::{RetryDecision, RetryPolicy, WaitTier};
pub use runtime::{
    Concurrency, DuplicateKind, Handler, HumanDuration, JobContext, JobError, JobEvent,
    JobObserver, JobOutcome, JobResult, KindSetting, ObserveError, Observed, Registry, ResultExt,
    UnknownKind, Worker, WorkerError, WorkerSettings,
};
pub use shutdown::shutdown_signal;
pub use telemetry::init_tracing;
pub use topology::{
    DEAD_LETTER_EXCHANGE, DEAD_LETTER_LIMIT, DELIVERY_LIMIT, Declared, EXCHANGE,
    QUARANTINE_EXCHANGE, Topology, TopologyDescription, TopologyError, TopologyMode,
    dead_letter_queue, quarantine_queue, work_queue,
};
pub use trace::{TRACEPARENT, TraceContext, TraceId};

/// Re-exported so users name the same lapin types the library uses.
pub use lapin;
