//! The producer: the web app's side of the queue. It saves uploads, publishes typed jobs and
//! never waits for a handler, only for the broker's confirm.

mod cli;
mod definitions;
mod publish;
pub mod web;

pub use cli::{Cli, Command, DefinitionsSettings, ServeSettings};
pub use publish::publish_by_kind;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use shared::photos;
use shared::{AmqpSettings, Publisher, PublisherSettings};

/// Runs the command line until done, or (for `serve`) until `shutdown` resolves.
pub async fn run(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let publish = match cli.command {
        Command::BrokerDefinitions(settings) => return definitions::write(&settings),
        Command::Serve(settings) => Err(settings),
        Command::Publish {
            kind,
            payload,
            count,
        } => Ok((kind, payload, count)),
    };
    let publisher = connect(&cli.amqp, cli.publishing).await?;
    let result = match publish {
        Err(settings) => serve(publisher.clone(), settings, shutdown).await,
        Ok((kind, payload, count)) => publish_by_kind(&publisher, &kind, &payload, count)
            .await
            .and_then(|ids| publish::print_ids(&ids)),
    };
    publisher.close().await;
    result
}

async fn connect(amqp: &AmqpSettings, settings: PublisherSettings) -> anyhow::Result<Publisher> {
    let topology = amqp
        .topology(photos::KINDS)
        .context("building the topology")?;
    Publisher::connect(amqp, settings, topology, "producer")
        .await
        .with_context(|| format!("connecting to RabbitMQ at {}", amqp.redacted()))
}

/// The app state `serve` runs with: database (migrated), storage, limits.
pub async fn app_state(
    publisher: Publisher,
    settings: &ServeSettings,
) -> anyhow::Result<web::AppState> {
    let photos = &settings.photos;
    let (store, storage) = photos.open().await?;
    Ok(web::AppState {
        publisher,
        store,
        storage: Arc::new(storage),
        limits: photos.limits(),
        max_upload_bytes: usize::try_from(settings.max_upload_bytes).context("MAX_UPLOAD_BYTES")?,
        body_read_timeout: settings.body_read_timeout,
    })
}

async fn serve(
    publisher: Publisher,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = app_state(publisher, &settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("listening on HTTP_ADDR {}", settings.http_addr))?;
    web::serve(listener, state, shutdown, settings.shutdown_timeout)
        .await
        .context("serving HTTP")
}
