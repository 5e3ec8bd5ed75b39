//! The publisher's settings: its deadlines, its channels, and the largest job it sends.

use std::time::Duration;

use crate::connection::parse_duration;

/// How publishing behaves when the broker is slow, blocked or away.
#[derive(Debug, Clone, clap::Args)]
pub struct PublisherSettings {
    /// Longest wait for the broker's confirm of one message.
    #[arg(long, env = "PUBLISH_CONFIRM_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub confirm_timeout: Duration,
    /// Longest wait while the broker blocks publishers (memory or disk alarm).
    #[arg(long, env = "PUBLISH_BLOCKED_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub blocked_timeout: Duration,
    /// Longest time one publish may take in all, reconnects included; a web request waiting
    /// on a broker that is down answers after this.
    #[arg(long, env = "PUBLISH_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub publish_timeout: Duration,
    /// Confirm channels, each on its own pooled connection.
    #[arg(long, env = "PUBLISH_CHANNELS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub channels: u16,
    /// Largest encoded job accepted, in bytes (RabbitMQ 4 refuses over 16 MiB by default).
    #[arg(long, env = "MAX_MESSAGE_SIZE", default_value_t = 16 * 1024 * 1024)]
    pub max_message_size: usize,
}

impl Default for PublisherSettings {
    fn default() -> Self {
        Self {
            confirm_timeout: Duration::from_secs(10),
            blocked_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(10),
            channels: 2,
            max_message_size: 16 * 1024 * 1024,
        }
    }
}
