//! The worker: consumes every domain's kinds (or those `WORKER_KINDS` names). Run as many as
//! you like; they share the queues, and each job goes to one of them. It composes the
//! domains: one database pool, one mailer and one publisher for every domain's handlers,
//! and their registries merged.

mod cli;

pub use cli::{Cli, HandlerSettings, MailSettings, MetricsAddr, OrderSettings, PipelineSettings};
pub use mail::Mailer;
pub use orders::Fulfilment;
pub use photos::Pipeline;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dbkit::{Database, Schema};
use orders::Warehouse;
use photos::imaging::{ContentFilter, HashBlocklist};
use rabbitmq_jobs::{
    AmqpSettings, Catalog, CpuPool, Publisher, PublisherSettings, Registry, Worker,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs the worker until `shutdown` resolves, then drains. A database that is not up yet
/// is waited for; `shutdown` ends that wait too. With `METRICS_ADDR` set, `/metrics` is
/// served there meanwhile.
pub async fn run(cli: Cli, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = match cli.metrics_addr.0 {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on METRICS_ADDR {address}"))?,
        ),
        None => None,
    };
    run_with_metrics(cli, metrics, shutdown).await
}

/// [`run`], serving `/metrics` on `metrics` (a listener bound already: a test binds port 0
/// and reads its address) instead of binding `METRICS_ADDR`. The listener stays up while the
/// worker starts and drains, and closes when the worker has stopped.
pub async fn run_with_metrics(
    cli: Cli,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let serving = metrics.map(|listener| {
        tokio::spawn(observability::serve(
            listener,
            stop.clone().cancelled_owned(),
        ))
    });
    let result = consume(cli, shutdown).await;
    stop.cancel();
    if let Some(serving) = serving {
        match tokio::time::timeout(METRICS_STOP_TIMEOUT, serving).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the metrics listener failed"),
            Ok(Err(error)) => tracing::warn!(%error, "the metrics listener's task failed"),
            Err(_) => tracing::warn!("the metrics listener did not stop in time"),
        }
    }
    result
}

/// The longest the worker waits for its metrics listener to close (it allows scrapes under
/// way five seconds).
const METRICS_STOP_TIMEOUT: Duration = Duration::from_secs(10);

async fn consume(cli: Cli, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let starting = registry_for(&cli.kinds, &cli.handlers, &cli.amqp, cli.publishing.clone());
    let mut registry = tokio::select! {
        registry = starting => registry?,
        () = &mut shutdown => {
            tracing::info!("stopped before the worker started");
            return Ok(());
        }
    };
    if !cli.kinds.is_empty() {
        registry
            .retain(&cli.kinds)
            .context("--kinds / WORKER_KINDS")?;
    }
    let worker = Worker::new(cli.amqp, cli.worker, cli.publishing, registry)
        .context("invalid worker configuration")?;
    worker.run(shutdown).await.context("worker stopped")
}

/// Every job type the handlers publish (follow-up jobs): each domain's catalog, merged.
pub fn catalog() -> anyhow::Result<Catalog> {
    photos::catalog()
        .merge(orders::catalog())
        .context("merging the domains' job catalogs")
}

/// Every domain's part of the database, checked at start.
#[must_use]
pub fn schemas() -> [Schema; 2] {
    [photos::schema(), orders::schema()]
}

/// Every domain's kinds with their handlers: connects the database (waiting for it if it is
/// not up yet), the mailer and the handlers' publisher (which connects on first use).
pub async fn registry(
    settings: &HandlerSettings,
    amqp: &AmqpSettings,
    publishing: PublisherSettings,
) -> anyhow::Result<Registry> {
    registry_for(&[], settings, amqp, publishing).await
}

/// The handlers of the domains that have a kind in `kinds` (every domain when it is empty):
/// a worker of order kinds only opens no photo storage and loads no blocklist.
pub async fn registry_for(
    kinds: &[String],
    settings: &HandlerSettings,
    amqp: &AmqpSettings,
    publishing: PublisherSettings,
) -> anyhow::Result<Registry> {
    let serves = |catalog: Catalog| {
        kinds.is_empty() || catalog.kinds().any(|kind| kinds.iter().any(|k| k == kind))
    };
    let database = settings.database.connect_when_up(&schemas()).await?;
    let mail = &settings.mail;
    let mailer = Mailer::new(mail.smtp_url.as_deref(), &mail.outbox_dir)?;
    let topology = amqp
        .topology(catalog()?.kinds())
        .context("building the topology")?;
    let publisher = Publisher::new(amqp, publishing, topology, "worker handlers")
        .context("setting up the handlers' publisher")?;
    let mut registry = Registry::new();
    if serves(photos::catalog()) {
        let pipeline = pipeline(settings, &database, mailer.clone(), publisher.clone())?;
        registry = registry
            .merge(photos::registry(Arc::new(pipeline)))
            .context("adding the photo handlers")?;
    }
    if serves(orders::catalog()) {
        let fulfilment = fulfilment(settings, &database, mailer, publisher)?;
        registry = registry
            .merge(orders::registry(Arc::new(fulfilment)))
            .context("adding the order handlers")?;
    }
    Ok(registry)
}

/// The photo handlers' dependencies.
fn pipeline(
    settings: &HandlerSettings,
    database: &Database,
    mailer: Mailer,
    publisher: Publisher,
) -> anyhow::Result<Pipeline> {
    let pipeline = &settings.pipeline;
    let photos = &pipeline.photos;
    let (store, storage) = photos.open(database)?;
    let filter: Box<dyn ContentFilter> = match &pipeline.blocklist_file {
        Some(path) => Box::new(
            HashBlocklist::from_file(path, pipeline.blocklist_max_distance)
                .with_context(|| format!("reading BLOCKLIST_FILE {}", path.display()))?
                .with_limits(photos.limits()),
        ),
        None => Box::new(HashBlocklist::empty()),
    };
    let cpu = pipeline
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
        mailer,
        mail_from: mail::mailbox(&pipeline.mail_from)
            .map_err(anyhow::Error::msg)
            .context("MAIL_FROM")?,
        user_email_domain: pipeline.user_email_domain.clone(),
        public_base_url: settings.mail.public_base_url.clone(),
        thumbnail_sizes: pipeline.thumbnail_sizes.clone(),
        limits: photos.limits(),
        decode_budget: photos.decode_budget(),
    })
}

/// The order handlers' dependencies.
fn fulfilment(
    settings: &HandlerSettings,
    database: &Database,
    mailer: Mailer,
    publisher: Publisher,
) -> anyhow::Result<Fulfilment> {
    let orders = &settings.orders;
    let warehouse = &orders.warehouse;
    Ok(Fulfilment {
        store: orders::OrderStore::new(database),
        publisher,
        mailer,
        mail_from: mail::mailbox(&orders.order_mail_from)
            .map_err(anyhow::Error::msg)
            .context("ORDER_MAIL_FROM")?,
        public_base_url: settings.mail.public_base_url.clone(),
        warehouse: Warehouse::new(&warehouse.warehouse_url, warehouse.warehouse_timeout)
            .context("setting up the warehouse client (WAREHOUSE_URL)")?,
    })
}
