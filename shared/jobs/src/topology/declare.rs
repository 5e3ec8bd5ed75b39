//! Declaring (or verifying) the topology on a broker, one kind at a time, and telling a
//! refusal (the broker said no) from a failure of the connection under it.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ErrorKind, ExchangeKind};

use super::{
    LEADER_LOCATOR, Topology, TopologyDescription, TopologyError, TopologyMode, owning_kind,
};

#[derive(Debug, Default)]
pub struct Declared {
    /// Kinds whose queues could not be declared or verified; the others are ready.
    pub refused: Vec<(String, TopologyError)>,
}

impl Declared {
    /// Whether `kind` is ready to publish to and consume from.
    #[must_use]
    pub fn is_ready(&self, kind: &str) -> bool {
        !self.refused.iter().any(|(refused, _)| refused == kind)
    }
}

/// Whether the broker refused an operation (a channel error it raised on purpose), as opposed
/// to the connection failing under it.
pub(crate) fn is_refusal(error: &lapin::Error) -> bool {
    let ErrorKind::ProtocolError(amqp) = error.kind() else {
        return false;
    };
    matches!(
        amqp.kind(),
        AMQPErrorKind::Soft(
            AMQPSoftError::NOTFOUND
                | AMQPSoftError::PRECONDITIONFAILED
                | AMQPSoftError::ACCESSREFUSED
                | AMQPSoftError::RESOURCELOCKED
        )
    )
}

/// The outcome of declaring every kind: the kinds the broker refused, with why.
/// How long closing the declaration channel may take.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Topology {
    /// Declares exchanges, queues and bindings (a no-op when they already exist as declared),
    /// or in [`TopologyMode::Verify`] checks that the exchanges and queues exist. The shared
    /// part (exchanges, wait tiers) must succeed; then each kind is declared on its own, and a
    /// kind the broker refuses is listed in the result instead of failing the rest. A refusal
    /// closes its channel, so the next kind gets a fresh one.
    #[tracing::instrument(skip_all, fields(kinds = self.kinds.len(), mode = ?self.mode))]
    pub async fn declare(&self, connection: &Connection) -> Result<Declared, TopologyError> {
        let current = self.describe();
        let earlier = current.without_leader_locator();
        let descriptions = [current, earlier];
        let mut channel = open_channel(connection).await?;
        self.declare_either(connection, &mut channel, &descriptions, None)
            .await?;
        let mut declared = Declared::default();
        for kind in &self.kinds {
            match self
                .declare_either(connection, &mut channel, &descriptions, Some(kind))
                .await
            {
                Ok(()) => {}
                Err(error) if error.is_refused() => {
                    tracing::error!(kind, %error, "the broker refused this kind's queues; its jobs wait until they exist");
                    declared.refused.push((kind.clone(), error));
                    channel = open_channel(connection).await?;
                }
                Err(error) => return Err(error),
            }
        }
        // Best effort: the channel has done its work, and the connection outlives it.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "declared".into())).await;
        Ok(declared)
    }

    /// Declares a part as described, or, when its queues predate the leader locator, as they
    /// were declared then (on a fresh channel: the refusal closed the first).
    async fn declare_either(
        &self,
        connection: &Connection,
        channel: &mut Channel,
        [current, earlier]: &[TopologyDescription; 2],
        kind: Option<&String>,
    ) -> Result<(), TopologyError> {
        match self.declare_part(channel, current, kind).await {
            Err(error) if predates_leader_locator(&error) => {
                tracing::warn!(
                    kind,
                    "queues declared by an earlier version, without {LEADER_LOCATOR}: kept as \
                     they are (a `queue-leader-locator` policy spreads their leaders)"
                );
                *channel = open_channel(connection).await?;
                self.declare_part(channel, earlier, kind).await
            }
            result => result,
        }
    }

    /// Declares the part of the topology that belongs to `kind`, or the shared part for `None`.
    async fn declare_part(
        &self,
        channel: &Channel,
        description: &TopologyDescription,
        kind: Option<&String>,
    ) -> Result<(), TopologyError> {
        let passive = self.mode == TopologyMode::Verify;
        let owner = |name: &str| owning_kind(name, &self.kinds);
        // Exchanges are shared by every kind.
        for (name, exchange_kind) in description.exchanges.iter().filter(|_| kind.is_none()) {
            declare_exchange(channel, name, exchange_kind, passive).await?;
        }
        for (name, args) in &description.queues {
            if owner(name) == kind {
                let args = if passive {
                    FieldTable::default()
                } else {
                    args.clone()
                };
                declare_queue(channel, name, args, passive).await?;
            }
        }
        if !passive {
            for (exchange, queue, key) in &description.bindings {
                if owner(queue) == kind {
                    bind(channel, queue, exchange, key).await?;
                }
            }
        }
        Ok(())
    }
}

async fn open_channel(connection: &Connection) -> Result<Channel, TopologyError> {
    connection
        .create_channel()
        .await
        .map_err(|source| TopologyError::Declare {
            what: "a channel for the topology".to_owned(),
            source,
        })
}

/// The broker refused a queue because it exists without the leader locator.
fn predates_leader_locator(error: &TopologyError) -> bool {
    match error {
        TopologyError::Declare { source, .. } => {
            is_refusal(source) && source.to_string().contains(LEADER_LOCATOR)
        }
        TopologyError::InvalidKind(_) => false,
    }
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
