//! The worker's command line; every flag can also come from its environment variable.

use shared::{AmqpSettings, PublisherSettings, WorkerSettings};

/// Consumes jobs from RabbitMQ and runs their handlers.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    /// The kinds to consume, comma-separated (default: all).
    #[arg(long, env = "WORKER_KINDS", value_delimiter = ',')]
    pub kinds: Vec<String>,
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub publishing: PublisherSettings,
}
