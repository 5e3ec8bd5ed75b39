//! The producer: the web app's side of the queue. It publishes typed jobs and never waits
//! for a handler, only for the broker's confirm.

mod cli;
mod publish;

pub use cli::{Cli, Command};
pub use publish::publish_by_kind;

use anyhow::Context;
use shared::{Publisher, Topology, photos};

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let topology = Topology::new(photos::KINDS).context("building the topology")?;
    match cli.command {
        Command::Publish {
            kind,
            payload,
            count,
        } => {
            let publisher = Publisher::connect(&cli.amqp, cli.publishing, topology, "producer")
                .await
                .with_context(|| format!("connecting to RabbitMQ at {}", cli.amqp.redacted()))?;
            let ids = publish_by_kind(&publisher, &kind, &payload, count).await;
            publisher.close().await;
            publish::print_ids(&ids?)
        }
    }
}
