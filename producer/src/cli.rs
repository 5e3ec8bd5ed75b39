//! The producer's command line; every flag can also come from its environment variable.

use shared::{AmqpSettings, PublisherSettings};

/// Publishes typed jobs to RabbitMQ.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub publishing: PublisherSettings,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish jobs of one kind and print their ids, one per line.
    Publish {
        /// The job kind, e.g. `process_thumbnails`.
        kind: String,
        /// The job's payload as JSON, checked against the kind's type.
        #[arg(long)]
        payload: String,
        /// How many copies to publish (each gets its own id).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
    },
}
