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

/// Whether a process creates the topology or only checks that it exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TopologyMode {
    /// Declare exchanges, queues and bindings (needs `configure` permission).
    #[default]
    Declare,
    /// Check passively that exchanges and queues exist: for least-privilege users, when the
    /// topology was set up by an administrator (e.g. from `producer broker-definitions`).
    Verify,
}

/// The set of kinds whose queues a process declares.
#[derive(Debug, Clone)]
pub struct Topology {
    kinds: Vec<String>,
    mode: TopologyMode,
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
        Ok(Self {
            kinds,
            mode: TopologyMode::Declare,
        })
    }

    /// The same kinds, declared or only verified.
    #[must_use]
    pub fn with_mode(mut self, mode: TopologyMode) -> Self {
        self.mode = mode;
        self
    }

    /// The kinds, sorted.
    #[must_use]
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Declares exchanges, queues and bindings (a no-op when they already exist as declared),
    /// or in [`TopologyMode::Verify`] checks that the exchanges and queues exist.
    #[tracing::instrument(skip_all, fields(kinds = self.kinds.len(), mode = ?self.mode))]
    pub async fn declare(&self, channel: &Channel) -> Result<(), TopologyError> {
        let description = self.describe();
        let passive = self.mode == TopologyMode::Verify;
        for (name, kind) in &description.exchanges {
            declare_exchange(channel, name, kind, passive).await?;
        }
        for (name, args) in &description.queues {
            let args = if passive {
                FieldTable::default()
            } else {
                args.clone()
            };
            declare_queue(channel, name, args, passive).await?;
        }
        if !passive {
            for (exchange, queue, key) in &description.bindings {
                bind(channel, queue, exchange, key).await?;
            }
        }
        Ok(())
    }

    /// The exchanges, queues and bindings as data: what [`Topology::declare`] creates, and
    /// what a broker definitions file lists.
    #[must_use]
    pub fn describe(&self) -> TopologyDescription {
        let mut description = TopologyDescription::default();
        description.exchanges.push((EXCHANGE.to_owned(), "direct"));
        description
            .exchanges
            .push((DEAD_LETTER_EXCHANGE.to_owned(), "direct"));
        for tier in WaitTier::all() {
            let name = tier.queue_name();
            let ttl = i32::try_from(tier.delay().as_millis()).unwrap_or(i32::MAX);
            let mut args = dead_lettering_args(EXCHANGE);
            args.insert("x-message-ttl".into(), AMQPValue::LongInt(ttl));
            description.exchanges.push((name.clone(), "fanout"));
            description.queues.push((name.clone(), args));
            description
                .bindings
                .push((name.clone(), name, String::new()));
        }
        for kind in &self.kinds {
            let (queue, dlq) = (work_queue(kind), dead_letter_queue(kind));
            let mut args = dead_lettering_args(DEAD_LETTER_EXCHANGE);
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(DELIVERY_LIMIT),
            );
            description.queues.push((queue.clone(), args));
            description.queues.push((dlq.clone(), quorum_args()));
            description
                .bindings
                .push((EXCHANGE.to_owned(), queue, kind.clone()));
            description
                .bindings
                .push((DEAD_LETTER_EXCHANGE.to_owned(), dlq, kind.clone()));
        }
        description
    }
}

/// The topology as data.
#[derive(Debug, Clone, Default)]
pub struct TopologyDescription {
    /// (name, `direct` or `fanout`), all durable.
    pub exchanges: Vec<(String, &'static str)>,
    /// (name, arguments), all durable.
    pub queues: Vec<(String, FieldTable)>,
    /// (exchange, queue, routing key).
    pub bindings: Vec<(String, String, String)>,
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

fn setup_hint(passive: bool) -> &'static str {
    if passive {
        " (verifying only: was the topology set up, e.g. from `producer broker-definitions`?)"
    } else {
        ""
    }
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: &str,
    passive: bool,
) -> Result<(), TopologyError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        passive,
        ..ExchangeDeclareOptions::default()
    };
    let kind = if kind == "fanout" {
        ExchangeKind::Fanout
    } else {
        ExchangeKind::Direct
    };
    channel
        .exchange_declare(
            ShortString::from(name),
            kind,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(declare_error(format!(
            "exchange {name}{}",
            setup_hint(passive)
        )))
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    args: FieldTable,
    passive: bool,
) -> Result<(), TopologyError> {
    let options = QueueDeclareOptions {
        durable: true,
        passive,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, args)
        .await
        .map(drop)
        .map_err(declare_error(format!(
            "queue {name}{}",
            setup_hint(passive)
        )))
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
