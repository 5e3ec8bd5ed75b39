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
    /// RabbitMQ URL, with the vhost percent-encoded (`%2f` is `/`). It holds a password:
    /// `--help` does not show the environment's value, and no error repeats it.
    #[arg(
        long = "amqp-url",
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@localhost:5672/%2f",
        value_parser = AmqpUrlParser,
        hide_default_value = false,
        hide_env_values = true
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

/// Parses an `amqp://` URL, naming what is wrong without repeating its password.
pub fn parse_amqp_url(url: &str) -> Result<AMQPUri, String> {
    url.parse::<AMQPUri>().map_err(|e| {
        let shown = without_password(url);
        format!(
            "`{shown}` is not an amqp:// URL: {}",
            e.replace(url, &shown)
        )
    })
}

/// `url` with the password of its user info (`scheme://user:password@host`) replaced by
/// `***`, for messages and logs.
#[must_use]
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let hidden = if user.len() == user_info.len() {
                ""
            } else {
                ":***"
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// clap's parser for `AMQP_URL`. A plain function parser would have clap quote the whole
/// value, password included, in its error; this one reports [`parse_amqp_url`]'s message.
#[derive(Debug, Clone, Copy)]
struct AmqpUrlParser;

impl clap::builder::TypedValueParser for AmqpUrlParser {
    type Value = AMQPUri;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<AMQPUri, clap::Error> {
        let name = arg.map_or_else(|| "AMQP_URL".to_owned(), ToString::to_string);
        let refuse = |message: String| {
            let message = format!("invalid value for '{name}': {message}\n");
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("the URL is not valid UTF-8".to_owned()))?;
        parse_amqp_url(text).map_err(refuse)
    }
}

/// Parses a human duration such as `500ms`, `10s` or `5m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms, 10s or 5m: {e}"))
}
