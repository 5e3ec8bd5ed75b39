//! The worker: consumes the photo pipeline's kinds. Run as many as you like; they share the
//! queues, and each job goes to one of them.

mod cli;
mod handlers;

pub use cli::Cli;
pub use handlers::registry;

use std::future::Future;

use anyhow::Context;
use shared::Worker;

/// Runs the worker until `shutdown` resolves, then drains.
pub async fn run(cli: Cli, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut registry = registry();
    if !cli.kinds.is_empty() {
        registry
            .retain(&cli.kinds)
            .context("--kinds / WORKER_KINDS")?;
    }
    let worker = Worker::new(cli.amqp, cli.worker, cli.publishing, registry)
        .context("invalid worker configuration")?;
    worker.run(shutdown).await.context("worker stopped")
}
