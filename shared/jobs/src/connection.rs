//! Where the broker is and how to reach it: the AMQP settings shared by every process.
//!
//! Heartbeats are always negotiated (a dead peer is noticed in about two intervals), and
//! every connection carries a name, so `rabbitmqctl list_connections` tells who is who.

use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::nodes::Nodes;
use crate::topology::{Topology, TopologyError, TopologyMode};

/// How to reach RabbitMQ.
#[derive(Debug, Clone, clap::Args)]
pub struct AmqpSettings {
    /// RabbitMQ URL, with the vhost percent-encoded (`%2f` is `/`); for a cluster, each
    /// node's URL, comma-separated (tried in a shuffled order, the next one when a node is
    /// lost). It holds a password: `--help` does not show the environment's value, and no
    /// error repeats it.
    #[arg(
        long = "amqp-url",
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@localhost:5672/%2f",
        value_parser = AmqpUrlParser,
        hide_default_value = false,
        hide_env_values = true
    )]
    pub nodes: Nodes,
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
            nodes: Nodes::parse(url)?,
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

    /// Each node's URL, in this process's order, with heartbeat and connection timeout
    /// written into its query.
    #[must_use]
    pub fn node_uris(&self) -> Vec<AMQPUri> {
        self.nodes
            .urls()
            .iter()
            .map(|url| self.with_query(url))
            .collect()
    }

    fn with_query(&self, url: &AMQPUri) -> AMQPUri {
        let mut uri = url.clone();
        uri.query.heartbeat = Some(self.heartbeat_secs);
        uri.query.connection_timeout =
            Some(u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX));
        uri
    }

    /// Hosts, ports and vhost, without credentials, for logs and errors.
    #[must_use]
    pub fn redacted(&self) -> String {
        self.nodes.redacted()
    }

    /// Opens one connection named `name` (shown in the management UI) to the first node that
    /// answers, starting one node further along than the last connection did.
    #[tracing::instrument(skip(self), fields(broker = %self.redacted()))]
    pub async fn connect(&self, name: &str) -> Result<Connection, lapin::Error> {
        let connecting = self
            .nodes
            .first_answering(|index| self.connect_to(&self.nodes.urls()[index], name));
        connecting.await.map_err(|error| {
            error.unwrap_or_else(|| {
                let none = std::io::Error::other("no RabbitMQ node configured");
                lapin::ErrorKind::IOError(std::sync::Arc::new(none)).into()
            })
        })
    }

    async fn connect_to(&self, node: &AMQPUri, name: &str) -> Result<Connection, lapin::Error> {
        Connection::connect_uri(self.with_query(node), connection_properties(name)).await
    }
}

/// Client properties for a connection named `name`.
#[must_use]
pub fn connection_properties(name: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(name.into())
}

/// clap's parser for `AMQP_URL`. A plain function parser would have clap quote the whole
/// value, password included, in its error; this one reports [`Nodes::parse`]'s message.
#[derive(Debug, Clone, Copy)]
struct AmqpUrlParser;

impl clap::builder::TypedValueParser for AmqpUrlParser {
    type Value = Nodes;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Nodes, clap::Error> {
        let name = arg.map_or_else(|| "AMQP_URL".to_owned(), ToString::to_string);
        let refuse = |message: String| {
            let message = format!("invalid value for '{name}': {message}\n");
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("the URL is not valid UTF-8".to_owned()))?;
        Nodes::parse(text).map_err(refuse)
    }
}

/// Parses a human duration such as `500ms`, `10s` or `5m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms, 10s or 5m: {e}"))
}
