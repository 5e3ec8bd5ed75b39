//! The worker: consumes the photo pipeline's kinds. Run as many as you like; they share the
//! queues, and each job goes to one of them.

mod cli;

pub use cli::{Cli, PipelineSettings};
pub use mail::Mailer;
pub use photos::{Pipeline, registry};

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use photos::imaging::{ContentFilter, HashBlocklist};
use rabbitmq_jobs::{AmqpSettings, CpuPool, Publisher, PublisherSettings, Worker};

/// Runs the worker until `shutdown` resolves, then drains. A database that is not up yet
/// is waited for; `shutdown` ends that wait too.
pub async fn run(cli: Cli, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let starting = pipeline(&cli.pipeline, &cli.amqp, cli.publishing.clone());
    let pipeline = tokio::select! {
        pipeline = starting => pipeline?,
        () = &mut shutdown => {
            tracing::info!("stopped before the worker started");
            return Ok(());
        }
    };
    let mut registry = registry(Arc::new(pipeline));
    if !cli.kinds.is_empty() {
        registry
            .retain(&cli.kinds)
            .context("--kinds / WORKER_KINDS")?;
    }
    let worker = Worker::new(cli.amqp, cli.worker, cli.publishing, registry)
        .context("invalid worker configuration")?;
    worker.run(shutdown).await.context("worker stopped")
}

/// Connects the handlers' database (waiting for it if it is not up yet), storage, mail and
/// publisher (which connects on first use).
pub async fn pipeline(
    settings: &PipelineSettings,
    amqp: &AmqpSettings,
    publishing: PublisherSettings,
) -> anyhow::Result<Pipeline> {
    let photos = &settings.photos;
    let (store, storage) = photos.open().await?;
    let filter: Box<dyn ContentFilter> = match &settings.blocklist_file {
        Some(path) => Box::new(
            HashBlocklist::from_file(path, settings.blocklist_max_distance)
                .with_context(|| format!("reading BLOCKLIST_FILE {}", path.display()))?
                .with_limits(photos.limits()),
        ),
        None => Box::new(HashBlocklist::empty()),
    };
    let topology = amqp
        .topology(photos::KINDS)
        .context("building the topology")?;
    let publisher = Publisher::new(amqp, publishing, topology, "worker handlers")
        .context("setting up the handlers' publisher")?;
    let cpu = settings
        .cpu_threads
        .map_or_else(CpuPool::per_core, CpuPool::new);
    tracing::info!(
        cpu_threads = cpu.threads(),
        "image work runs at most this many at once"
    );
    Ok(Pipeline {
        store,
        storage,
        publisher,
        filter,
        cpu,
        mailer: Mailer::new(settings.smtp_url.as_deref(), &settings.outbox_dir)?,
        mail_from: mail::mailbox(&settings.mail_from)
            .map_err(anyhow::Error::msg)
            .context("MAIL_FROM")?,
        user_email_domain: settings.user_email_domain.clone(),
        public_base_url: settings.public_base_url.clone(),
        thumbnail_sizes: settings.thumbnail_sizes.clone(),
        limits: photos.limits(),
        decode_budget: photos.decode_budget(),
    })
}
