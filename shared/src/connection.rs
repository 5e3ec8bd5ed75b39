//! Where the broker is and how to reach it: the AMQP settings shared by every process.
//!
//! Heartbeats are always negotiated (a dead peer is noticed in about two intervals), and
//! every connection carries a name, so `rabbitmqctl list_connections` tells who is who.

use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::topology::{Topology, TopologyError, TopologyMode};

/// How to reach RabbitMQ.
#[derive(Debug, Clone, clap::Args)]
pub struct AmqpSettings {
    /// RabbitMQ URL, with the vhost percent-encoded (`%2f` is `/`).
    #[arg(
        long = "amqp-url",
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@localhost:5672/%2f",
        value_parser = parse_amqp_url,
        hide_default_value = false
    )]
    pub url: AMQPUri,
    /// Heartbeat interval in seconds (0 would turn heartbeats off, so it is refused).
    #[arg(long = "amqp-heartbeat", env = "AMQP_HEARTBEAT", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub heartbeat_secs: u16,
    /// How long one connection attempt may take.
    #[arg(long = "amqp-connect-timeout", env = "AMQP_CONNECT_TIMEOUT", default_value = "5s",
          value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// `declare` the exchanges and queues, or only `verify` they exist (for users without
    /// the `configure` permission, on a broker set up from `producer broker-definitions`).
    #[arg(long = "topology", env = "TOPOLOGY", value_enum, default_value_t = TopologyMode::Declare)]
    pub topology: TopologyMode,
}

impl AmqpSettings {
    /// Settings for `url` with the default heartbeat and timeout.
    pub fn from_url(url: &str) -> Result<Self, String> {
        Ok(Self {
            url: parse_amqp_url(url)?,
            heartbeat_secs: 10,
            connect_timeout: Duration::from_secs(5),
            topology: TopologyMode::Declare,
        })
    }

    /// The topology of `kinds`, declared or verified as these settings say.
    pub fn topology<I, S>(&self, kinds: I) -> Result<Topology, TopologyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(Topology::new(kinds)?.with_mode(self.topology))
    }

    /// The URL with heartbeat and connection timeout written into its query.
    #[must_use]
    pub fn uri(&self) -> AMQPUri {
        let mut uri = self.url.clone();
        uri.query.heartbeat = Some(self.heartbeat_secs);
        uri.query.connection_timeout =
            Some(u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX));
        uri
    }

    /// Host, port and vhost, without credentials, for logs and errors.
    #[must_use]
    pub fn redacted(&self) -> String {
        format!(
            "{}:{} (vhost `{}`)",
            self.url.authority.host, self.url.authority.port, self.url.vhost
        )
    }

    /// Opens one connection named `name` (shown in the management UI).
    #[tracing::instrument(skip(self), fields(broker = %self.redacted()))]
    pub async fn connect(&self, name: &str) -> Result<Connection, lapin::Error> {
        Connection::connect_uri(self.uri(), connection_properties(name)).await
    }
}

/// Client properties for a connection named `name`.
#[must_use]
pub fn connection_properties(name: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(name.into())
}

/// Parses an `amqp://` URL, naming what is wrong.
pub fn parse_amqp_url(url: &str) -> Result<AMQPUri, String> {
    url.parse::<AMQPUri>()
        .map_err(|e| format!("`{url}` is not an amqp:// URL: {e}"))
}

/// Parses a human duration such as `500ms`, `10s` or `5m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms, 10s or 5m: {e}"))
}
