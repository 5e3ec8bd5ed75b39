//! The producer: the web app's side of the queue. It saves uploads, takes orders, publishes
//! typed jobs and never waits for a handler, only for the broker's confirm. It composes the
//! domains: each one's catalog (its kinds) and schema.

mod cli;
mod database;
mod definitions;
mod publish;
pub mod warehouse_stub;
pub mod web;

pub use cli::{Cli, Command, DatabaseSetupSettings, DefinitionsSettings, ServeSettings};
pub use publish::publish_by_kind;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use dbkit::Schema;
use rabbitmq_jobs::{AmqpSettings, Catalog, Publisher, PublisherSettings};
use tokio::sync::watch;

/// Runs the command line until done, or (for `serve`) until `shutdown` resolves.
pub async fn run(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match cli.command {
        Command::BrokerDefinitions(settings) => definitions::write(&settings),
        Command::DbSetup(settings) => database::set_up(&settings).await,
        Command::Serve(settings) => {
            // Serving does not wait for RabbitMQ: the publisher connects on first use, and
            // until the broker answers `/readyz` says so and uploads answer 503.
            let publisher = publisher(&cli.amqp, cli.publishing)?;
            let result = serve(publisher.clone(), settings, shutdown).await;
            publisher.close().await;
            result
        }
        Command::Publish {
            kind,
            payload,
            count,
        } => {
            let publisher = publisher(&cli.amqp, cli.publishing)?;
            // A command run by hand: an unreachable broker is reported now.
            let result = match publisher.ready().await {
                Ok(()) => match catalog() {
                    Ok(catalog) => publish_by_kind(&publisher, &catalog, &kind, &payload, count)
                        .await
                        .and_then(|ids| publish::print_ids(&ids)),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error)
                    .with_context(|| format!("connecting to RabbitMQ at {}", cli.amqp.redacted())),
            };
            publisher.close().await;
            result
        }
    }
}

/// Every job type this app publishes: each domain's catalog, merged (an error if two
/// domains name the same kind).
pub fn catalog() -> anyhow::Result<Catalog> {
    photos::catalog()
        .merge(orders::catalog())
        .context("merging the domains' job catalogs")
}

/// Every domain's part of the database, for `db-setup` and the start-up check.
#[must_use]
pub fn schemas() -> [Schema; 2] {
    [photos::schema(), orders::schema()]
}

/// A publisher, for every kind of the [`catalog`], that connects on first use.
fn publisher(amqp: &AmqpSettings, settings: PublisherSettings) -> anyhow::Result<Publisher> {
    let topology = amqp
        .topology(catalog()?.kinds())
        .context("building the topology")?;
    Publisher::new(amqp, settings, topology, "producer")
        .with_context(|| format!("setting up the publisher for {}", amqp.redacted()))
}

/// Connects the publisher in the background: the first upload need not wait for it, and a
/// broker that is down at start is logged at once.
fn warm_up(publisher: Publisher) {
    tokio::spawn(async move {
        match publisher.ready().await {
            Ok(()) => tracing::info!("connected to RabbitMQ"),
            Err(error) => tracing::warn!(
                %error,
                "RabbitMQ is not reachable yet; uploads answer 503 until it is"
            ),
        }
    });
}

/// `shutdown` as a flag that can be awaited more than once: while starting, then serving.
fn shutdown_flag(shutdown: impl Future<Output = ()> + Send + 'static) -> watch::Receiver<bool> {
    let (flag, watching) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        flag.send_replace(true);
    });
    watching
}

/// Resolves once the flag is raised (or can no longer be: the process is ending).
async fn raised(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|raised| *raised).await;
}

/// The app state `serve` runs with: database (schema checked; waited for if it is not up yet),
/// storage, limits.
pub async fn app_state(
    publisher: Publisher,
    settings: &ServeSettings,
) -> anyhow::Result<web::AppState> {
    let database = settings.database.connect_when_up(&schemas()).await?;
    let photos = &settings.photos;
    let (store, storage) = photos.open(&database)?;
    Ok(web::AppState {
        checkout: orders::Checkout {
            store: orders::OrderStore::new(&database),
            publisher: publisher.clone(),
        },
        uploads: photos::Uploads {
            store,
            storage: Arc::new(storage),
            publisher,
            limits: photos.limits(),
            decode_budget: photos.decode_budget(),
            decode_wait: settings.decode_wait,
        },
        max_upload_bytes: usize::try_from(settings.max_upload_bytes).context("MAX_UPLOAD_BYTES")?,
        body_read_timeout: settings.body_read_timeout,
    })
}

async fn serve(
    publisher: Publisher,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = shutdown_flag(shutdown);
    warm_up(publisher.clone());
    // The database is waited for if it is not up yet; a shutdown ends that wait.
    let state = tokio::select! {
        state = app_state(publisher, &settings) => state?,
        () = raised(stop.clone()) => {
            tracing::info!("stopped before serving");
            return Ok(());
        }
    };
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("listening on HTTP_ADDR {}", settings.http_addr))?;
    web::serve(listener, state, raised(stop), settings.shutdown_timeout)
        .await
        .context("serving HTTP")
}
