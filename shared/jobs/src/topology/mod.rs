//! The exchanges and queues jobs travel through, declared idempotently by every process.
//!
//! ```text
//!  publish ──► jobs (direct) ──kind──► jobs.<kind> (quorum) ──► worker
//!                 ▲                         │ x-delivery-limit backstop
//!                 │ TTL expiry              ▼
//!  jobs.wait.<ms> (quorum, TTL) ◄─retry─ worker ─dead letter─► jobs.dlx ──kind──► jobs.<kind>.dlq
//!                                           │ orphaned twice
//!                                           ▼
//!                  jobs.quarantine ──kind──► jobs.<kind>.quarantine ──► run alone (basic.get)
//! ```
//! Both binaries declare all of it at start and after every reconnect, so a producer can
//! publish before any worker ever ran (decoupling), and a wiped broker heals itself. Each
//! kind is declared on its own: a kind the broker refuses (a queue missing in `verify` mode,
//! other arguments) is reported and does not stop the others.

mod declare;

use lapin::types::{AMQPValue, FieldTable};

pub use self::declare::Declared;
pub(crate) use self::declare::is_refusal;

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
/// The delivery limit of a dead-letter queue: a dead letter stays until someone takes it.
/// Unset, RabbitMQ 4 drops a message returned 20 times (e.g. "Nack, requeue" in the management
/// UI), and RabbitMQ 3.x reads -1 as "drop on the first return"; the largest value means
/// "never" on both.
pub const DEAD_LETTER_LIMIT: i32 = i32::MAX;
/// Where a job goes when workers were lost while it was in their hands twice: it then runs
/// alone, so a job that kills its worker is told apart from the jobs beside it.
pub const QUARANTINE_EXCHANGE: &str = "jobs.quarantine";

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

/// The quarantine queue of `kind`: its suspects, each run alone.
#[must_use]
pub fn quarantine_queue(kind: &str) -> String {
    format!("jobs.{kind}.quarantine")
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
    /// The broker said no: the queue is missing (`verify` mode), exists with other arguments,
    /// or the user may not declare it. Trying again only helps once someone fixes the broker.
    #[must_use]
    pub fn is_refused(&self) -> bool {
        match self {
            Self::InvalidKind(_) => true,
            Self::Declare { source, .. } => is_refusal(source),
        }
    }

    /// Worth trying again at once: the connection or channel went away mid-declaration (a
    /// forced close, a broker restart), not a refusal.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        !self.is_refused()
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
        description
            .exchanges
            .push((QUARANTINE_EXCHANGE.to_owned(), "direct"));
        for kind in &self.kinds {
            let (queue, dlq, quarantine) = (
                work_queue(kind),
                dead_letter_queue(kind),
                quarantine_queue(kind),
            );
            let mut dlq_args = quorum_args();
            dlq_args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(DEAD_LETTER_LIMIT),
            );
            description.queues.push((queue.clone(), work_args()));
            description.queues.push((dlq.clone(), dlq_args));
            description.queues.push((quarantine.clone(), work_args()));
            description
                .bindings
                .push((EXCHANGE.to_owned(), queue, kind.clone()));
            description
                .bindings
                .push((DEAD_LETTER_EXCHANGE.to_owned(), dlq, kind.clone()));
            description
                .bindings
                .push((QUARANTINE_EXCHANGE.to_owned(), quarantine, kind.clone()));
        }
        description
    }
}

impl TopologyDescription {
    /// The same, without [`LEADER_LOCATOR`]: for queues declared by a version that did not
    /// set it, which the broker refuses to declare again with another argument.
    #[must_use]
    pub(crate) fn without_leader_locator(&self) -> Self {
        let mut description = self.clone();
        for (_, args) in &mut description.queues {
            let kept: std::collections::BTreeMap<_, _> = args
                .inner()
                .iter()
                .filter(|(key, _)| key.as_str() != LEADER_LOCATOR)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            *args = FieldTable::from(kept);
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

/// The kind a queue belongs to (`jobs.<kind>`, `jobs.<kind>.dlq`, `jobs.<kind>.quarantine`),
/// or `None` for the shared parts (exchanges, wait tiers).
pub(super) fn owning_kind<'k>(name: &str, kinds: &'k [String]) -> Option<&'k String> {
    let rest = name.strip_prefix("jobs.")?;
    let kind = rest
        .strip_suffix(".dlq")
        .or_else(|| rest.strip_suffix(".quarantine"))
        .unwrap_or(rest);
    kinds.iter().find(|k| k.as_str() == kind)
}

/// A work or quarantine queue: dead letters go to `jobs.dlx`, with the broker's backstop.
fn work_args() -> FieldTable {
    let mut args = dead_lettering_args(DEAD_LETTER_EXCHANGE);
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(DELIVERY_LIMIT),
    );
    args
}

/// A quorum queue whose leader goes to the node with the fewest leaders, so that in a
/// cluster the queues' work spreads over the nodes (with one node, it is that node).
fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    args.insert(LEADER_LOCATOR.into(), long_string("balanced"));
    args
}

/// The argument that places a quorum queue's leader (RabbitMQ 3.10 and later).
pub(crate) const LEADER_LOCATOR: &str = "x-queue-leader-locator";

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
