//! The exchanges and queues jobs travel through, declared idempotently by every process.
//!
//! ```text
//!  publish ──► jobs (direct) ──kind──► jobs.<kind> (quorum) ──► worker
//!                 ▲                         │ x-delivery-limit backstop
//!                 │ TTL expiry              ▼
//!  jobs.wait.<ms> (quorum, TTL) ◄─retry─ worker ─dead letter─► jobs.dlx ──kind──► jobs.<kind>.dlq
//! ```
//! Both binaries declare all of it at start and after every reconnect, so a producer can
//! publish before any worker ever ran (decoupling), and a wiped broker heals itself.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::job::is_valid_kind;
use crate::retry::WaitTier;

/// The direct exchange every job is published to, with its kind as routing key.
pub const EXCHANGE: &str = "jobs";
/// Where failed jobs go, with their kind as routing key, on to `jobs.<kind>.dlq`.
pub const DEAD_LETTER_EXCHANGE: &str = "jobs.dlx";
/// Broker-side backstop: after this many deliveries without an ack the broker itself
/// dead-letters a job (one that kills its worker every time). Fixed, because RabbitMQ refuses
/// to redeclare a queue with other arguments. RabbitMQ 4 defaults to 20; 3.x has no default.
pub const DELIVERY_LIMIT: i32 = 20;

/// The work queue of `kind`.
#[must_use]
pub fn work_queue(kind: &str) -> String {
    format!("jobs.{kind}")
}

/// The dead-letter queue of `kind`.
#[must_use]
pub fn dead_letter_queue(kind: &str) -> String {
    format!("jobs.{kind}.dlq")
}

/// Failure to declare the topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A kind that cannot name a queue.
    #[error("job kind `{0}` is not 1 to 64 characters of [a-z0-9_]")]
    InvalidKind(String),
    /// The broker refused a declaration or the channel failed.
    #[error("declaring {what} failed: {source}")]
    Declare {
        /// The exchange, queue or binding being declared.
        what: String,
        /// The broker's or the connection's error.
        #[source]
        source: lapin::Error,
    },
}

impl TopologyError {
    /// A lost connection is worth retrying; a refused declaration (other arguments) is not.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidKind(_) => false,
            Self::Declare { source, .. } => source.is_io_error(),
        }
    }
}

/// The set of kinds whose queues a process declares.
#[derive(Debug, Clone)]
pub struct Topology {
    kinds: Vec<String>,
}

impl Topology {
    /// Checks every kind's name.
    pub fn new<I, S>(kinds: I) -> Result<Self, TopologyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut kinds: Vec<String> = kinds.into_iter().map(Into::into).collect();
        if let Some(bad) = kinds.iter().find(|k| !is_valid_kind(k)) {
            return Err(TopologyError::InvalidKind(bad.clone()));
        }
        kinds.sort();
        kinds.dedup();
        Ok(Self { kinds })
    }

    /// The kinds, sorted.
    #[must_use]
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Declares exchanges, queues and bindings; a no-op when they already exist as declared.
    #[tracing::instrument(skip_all, fields(kinds = self.kinds.len()))]
    pub async fn declare(&self, channel: &Channel) -> Result<(), TopologyError> {
        declare_exchange(channel, EXCHANGE, ExchangeKind::Direct).await?;
        declare_exchange(channel, DEAD_LETTER_EXCHANGE, ExchangeKind::Direct).await?;
        for tier in WaitTier::all() {
            let name = tier.queue_name();
            declare_exchange(channel, &name, ExchangeKind::Fanout).await?;
            let ttl = i32::try_from(tier.delay().as_millis()).unwrap_or(i32::MAX);
            let mut args = dead_lettering_args(EXCHANGE);
            args.insert("x-message-ttl".into(), AMQPValue::LongInt(ttl));
            declare_queue(channel, &name, args).await?;
            bind(channel, &name, &name, "").await?;
        }
        for kind in &self.kinds {
            let queue = work_queue(kind);
            let mut args = dead_lettering_args(DEAD_LETTER_EXCHANGE);
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(DELIVERY_LIMIT),
            );
            declare_queue(channel, &queue, args).await?;
            bind(channel, &queue, EXCHANGE, kind).await?;

            let dlq = dead_letter_queue(kind);
            declare_queue(channel, &dlq, quorum_args()).await?;
            bind(channel, &dlq, DEAD_LETTER_EXCHANGE, kind).await?;
        }
        Ok(())
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    args
}

/// A quorum queue whose dead letters go to `exchange` at least once: the broker keeps a
/// message until the target queue confirms it (this needs `reject-publish` overflow).
fn dead_lettering_args(exchange: &str) -> FieldTable {
    let mut args = quorum_args();
    args.insert("x-dead-letter-exchange".into(), long_string(exchange));
    args.insert(
        "x-dead-letter-strategy".into(),
        long_string("at-least-once"),
    );
    args.insert("x-overflow".into(), long_string("reject-publish"));
    args
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

fn declare_error(what: String) -> impl FnOnce(lapin::Error) -> TopologyError {
    move |source| TopologyError::Declare { what, source }
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), TopologyError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            ShortString::from(name),
            kind,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(declare_error(format!("exchange {name}")))
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    args: FieldTable,
) -> Result<(), TopologyError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, args)
        .await
        .map(drop)
        .map_err(declare_error(format!("queue {name}")))
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), TopologyError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(declare_error(format!(
            "binding {exchange} -> {queue} ({key})"
        )))
}
