//! The producer: the web app's side of the queue. It saves uploads, takes orders, publishes
//! typed jobs and never waits for a handler, only for the broker's confirm. It composes the
//! domains: each one's catalog (its kinds) and schema.

mod cli;
mod database;
mod dead_letters;
mod definitions;
mod publish;
pub mod warehouse_stub;
pub mod web;

pub use cli::{
    AdminSettings, Cli, Command, DatabaseSetupSettings, DeadLetterAction, DefinitionsSettings,
    JobDelivery, Selection, ServeSettings,
};
pub use dead_letters::dead_letters;
pub use publish::publish_by_kind;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dbkit::Schema;
use photos::Queueing;
use rabbitmq_jobs::outbox::{Outbox, Relay};
use rabbitmq_jobs::{AmqpSettings, Catalog, Publisher, PublisherSettings};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

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
            // until the broker answers, uploads and orders wait in the outbox.
            let publisher = publisher(&cli.amqp, cli.publishing.clone())?;
            let admin = admin(&cli.admin, &cli.amqp, &cli.publishing)?;
            let result = serve(publisher.clone(), settings, admin, shutdown).await;
            publisher.close().await;
            result
        }
        Command::DeadLetters(action) => {
            let amqp = cli.admin.amqp(&cli.amqp);
            let dead = dead_letters(&amqp, cli.publishing)?;
            dead_letters::run(action, &dead)
                .await
                .with_context(|| format!("RabbitMQ at {}", amqp.redacted()))
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

/// Every domain's part of the database and the job outbox's, for `db-setup` and the
/// start-up check.
#[must_use]
pub fn schemas() -> [Schema; 3] {
    [photos::schema(), orders::schema(), dbkit::outbox_schema()]
}

/// A publisher, for every kind of the [`catalog`], that connects on first use.
fn publisher(amqp: &AmqpSettings, settings: PublisherSettings) -> anyhow::Result<Publisher> {
    let topology = amqp
        .topology(catalog()?.kinds())
        .context("building the topology")?;
    Publisher::new(amqp, settings, topology, "producer")
        .with_context(|| format!("setting up the publisher for {}", amqp.redacted()))
}

/// The admin API and dashboard, when `ADMIN_TOKEN` is set: dead letters over
/// `ADMIN_AMQP_URL`, queue depths and rates from `RABBITMQ_MANAGEMENT_URL`.
fn admin(
    settings: &AdminSettings,
    amqp: &AmqpSettings,
    publishing: &PublisherSettings,
) -> anyhow::Result<Option<web::Admin>> {
    let Some(token) = &settings.admin_token else {
        return Ok(None);
    };
    let amqp = settings.amqp(amqp);
    let dead = dead_letters(&amqp, publishing.clone())?;
    let stats = match &settings.management_url {
        Some(url) => {
            let vhost = amqp
                .node_uris()
                .first()
                .map(|uri| uri.vhost.clone())
                .unwrap_or_default();
            Some(web::BrokerStats::new(url, &vhost).context("RABBITMQ_MANAGEMENT_URL")?)
        }
        None => None,
    };
    Ok(Some(web::Admin::new(token, dead, stats)))
}

/// Connects the publisher in the background: the first upload need not wait for it, and a
/// broker that is down at start is logged at once.
fn warm_up(publisher: Publisher) {
    tokio::spawn(async move {
        match publisher.ready().await {
            Ok(()) => tracing::info!("connected to RabbitMQ"),
            Err(error) => tracing::warn!(
                %error,
                "RabbitMQ is not reachable yet; jobs wait in the outbox until it is"
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

/// What `serve` runs: the web app's state and the outbox's relay.
#[derive(Debug)]
pub struct Serving {
    /// What every request handler shares.
    pub state: web::AppState,
    /// Publishes what the requests wrote into the outbox.
    pub relay: Relay,
}

/// Opens what `serve` runs with: the database (schema checked; waited for if it is not up
/// yet), storage, limits, the outbox and its relay.
pub async fn prepare(
    publisher: Publisher,
    settings: &ServeSettings,
    admin: Option<web::Admin>,
) -> anyhow::Result<Serving> {
    let database = settings.database.connect_when_up(&schemas()).await?;
    let photos = &settings.photos;
    let (store, storage) = photos.open(&database)?;
    let outbox = Outbox::new(settings.outbox.clone());
    let queueing = match settings.job_delivery {
        JobDelivery::Outbox => Queueing::Outbox(outbox.clone()),
        JobDelivery::Direct => Queueing::Direct(publisher.clone()),
    };
    let relay = Relay::new(
        database.pool().clone(),
        publisher.clone(),
        settings.outbox.clone(),
        database.timeout(),
    );
    let state = web::AppState {
        checkout: orders::Checkout {
            store: orders::OrderStore::new(&database),
            outbox,
        },
        uploads: photos::Uploads {
            store,
            storage: Arc::new(storage),
            queueing,
            limits: photos.limits(),
            decode_budget: photos.decode_budget(),
            decode_wait: settings.decode_wait,
            in_flight: TaskTracker::new(),
        },
        publisher,
        max_upload_bytes: usize::try_from(settings.max_upload_bytes).context("MAX_UPLOAD_BYTES")?,
        body_read_timeout: settings.body_read_timeout,
        admin,
    };
    Ok(Serving { state, relay })
}

/// Serves HTTP on `listener` and relays the outbox until `shutdown`; then finishes the
/// requests in flight and the relay's batch, each for at most `shutdown_timeout`.
pub async fn serve_on(
    serving: Serving,
    listener: tokio::net::TcpListener,
    shutdown_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = shutdown_flag(shutdown);
    let relaying = tokio::spawn(serving.relay.run(raised(stop.clone())));
    let uploads = serving.state.uploads.clone();
    let served = web::serve(listener, serving.state, raised(stop), shutdown_timeout)
        .await
        .context("serving HTTP");
    // Uploads whose clients left are finished too: cut between files and record, they would
    // leave files of nothing. Their jobs are in the outbox, for whichever relay runs next.
    let finishing = async {
        uploads.finish().await;
        relaying.await
    };
    if tokio::time::timeout(shutdown_timeout, finishing)
        .await
        .is_err()
    {
        tracing::warn!("uploads or the outbox relay did not finish within SHUTDOWN_TIMEOUT");
    }
    served
}

async fn serve(
    publisher: Publisher,
    settings: ServeSettings,
    admin: Option<web::Admin>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = shutdown_flag(shutdown);
    warm_up(publisher.clone());
    // The database is waited for if it is not up yet; a shutdown ends that wait.
    let serving = tokio::select! {
        serving = prepare(publisher, &settings, admin) => serving?,
        () = raised(stop.clone()) => {
            tracing::info!("stopped before serving");
            return Ok(());
        }
    };
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("listening on HTTP_ADDR {}", settings.http_addr))?;
    serve_on(serving, listener, settings.shutdown_timeout, raised(stop)).await
}
