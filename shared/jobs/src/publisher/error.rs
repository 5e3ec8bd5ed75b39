//! Why a publish failed, and whether trying again later can help.

use std::time::Duration;

/// A job that was not accepted by the broker. Nothing is accepted silently: `Ok` from a
/// publish means the broker confirmed the job and routed it to a queue.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The payload could not be serialised.
    #[error("job `{kind}` could not be encoded as JSON: {source}")]
    Encode {
        /// The job's kind.
        kind: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The encoded job is larger than the broker accepts.
    #[error(
        "job `{kind}` is {size} bytes, over the {max}-byte limit (RabbitMQ 4 refuses messages over 16 MiB by default); \
         store large data elsewhere and publish a reference"
    )]
    TooLarge {
        /// The job's kind.
        kind: String,
        /// The encoded size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// No queue is bound for the routing key: the broker returned the message.
    #[error(
        "no queue takes `{routing_key}` on exchange `{exchange}`; the broker returned it ({reply})"
    )]
    Unroutable {
        /// The exchange published to.
        exchange: String,
        /// The routing key (the job's kind).
        routing_key: String,
        /// The broker's reply text, e.g. NO_ROUTE.
        reply: String,
    },
    /// The broker could not take the message (e.g. a queue refusing publishes).
    #[error("the broker refused (nacked) the message to `{routing_key}`")]
    Nacked {
        /// The routing key.
        routing_key: String,
    },
    /// The broker did not confirm within the configured time; the job may or may not be stored.
    #[error("the broker did not confirm the message within {0:?}")]
    ConfirmTimeout(Duration),
    /// The broker blocks publishers because of a memory or disk alarm.
    #[error(
        "the broker is blocking publishers (a memory or disk alarm) and did not lift the block within {0:?}"
    )]
    Blocked(Duration),
    /// The exchanges and queues could not be declared.
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    /// The broker could not be reached, or the connection or channel was lost, until the
    /// publish deadline passed.
    #[error("RabbitMQ unreachable or connection lost: {0}")]
    Connection(String),
}

impl PublishError {
    /// Whether publishing the same job again later may succeed. A retried publish after
    /// [`PublishError::ConfirmTimeout`] can duplicate the job, which handlers tolerate
    /// (delivery is at least once anyway).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Nacked { .. }
            | Self::ConfirmTimeout(_)
            | Self::Blocked(_)
            | Self::Connection(_) => true,
            Self::Topology(e) => e.is_retryable(),
            Self::Encode { .. } | Self::TooLarge { .. } | Self::Unroutable { .. } => false,
        }
    }

    pub(crate) fn connection(context: &str, error: impl std::fmt::Display) -> Self {
        Self::Connection(format!("{context}: {error}"))
    }
}
