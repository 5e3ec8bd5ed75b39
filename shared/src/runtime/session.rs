//! One connection's life: declare, subscribe, dispatch deliveries, until the connection is
//! lost or the worker stops.
//!
//! Consuming happens on a connection of its own: a broker alarm blocks publishing
//! connections, and acks must keep flowing while retries and dead letters wait on it.

use std::sync::Arc;

use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::delivery::Dispatcher;
use super::settings::WorkerSettings;
use crate::connection::AmqpSettings;
use crate::topology::{Topology, TopologyError, work_queue};

/// What every session of a worker shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) amqp: AmqpSettings,
    pub(crate) settings: WorkerSettings,
    pub(crate) topology: Topology,
    pub(crate) dispatcher: Dispatcher,
    /// One permit per job allowed to run at once.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// The jobs in flight, across reconnects.
    pub(crate) tracker: TaskTracker,
    /// Cancelled on SIGTERM/SIGINT: stop taking jobs.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the shutdown deadline passes: abandon the jobs still running.
    pub(crate) abandon: CancellationToken,
}

/// How a session ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The worker is stopping; in-flight jobs were drained.
    Stopped,
    /// The connection or channel failed; reconnect.
    Lost(String),
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("{0}")]
    Lapin(#[from] lapin::Error),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("no answer from the broker within {0:?}")]
    TimedOut(std::time::Duration),
}

// Each event is moved through the stream once and never stored, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum ConsumerEvent {
    Delivery(&'static str, lapin::Result<Delivery>),
    /// The consumer's stream ended: the broker cancelled it, or its channel closed.
    Ended(&'static str),
}

pub(crate) struct Session {
    connection: Connection,
    channel: Channel,
    consumers: SelectAll<BoxStream<'static, ConsumerEvent>>,
    /// The connection's errors, watched even while every job slot is busy: a session that
    /// only learnt of a lost connection from its consumers would not notice it until a slot
    /// freed up.
    errors: BoxStream<'static, String>,
    tags: Vec<ShortString>,
}

/// How long closing may take: the connection may already be half gone.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Session {
    /// Connects, declares the topology, sets the prefetch and subscribes to every kind.
    pub(crate) async fn open(ctx: &Context) -> Result<Self, OpenError> {
        let name = format!("{} consumer", ctx.settings.name);
        let connection = ctx.amqp.connect(&name).await?;
        let errors = connection
            .events_listener()
            .filter_map(|event| async move {
                match event {
                    lapin::Event::Error(error) => Some(error.to_string()),
                    _ => None,
                }
            })
            .boxed();
        let channel = connection.create_channel().await?;
        ctx.topology.declare(&channel).await?;
        channel
            .basic_qos(ctx.settings.prefetch, BasicQosOptions::default())
            .await?;
        let mut session = Self {
            connection,
            channel,
            consumers: SelectAll::new(),
            errors,
            tags: Vec::new(),
        };
        for kind in ctx.dispatcher.registry.kinds() {
            session.subscribe(ctx, kind).await?;
        }
        Ok(session)
    }

    async fn subscribe(&mut self, ctx: &Context, kind: &'static str) -> Result<(), lapin::Error> {
        let tag = format!(
            "{}/{kind}/{}",
            ctx.settings.name,
            uuid::Uuid::new_v4().simple()
        );
        let consumer = self
            .channel
            .basic_consume(
                work_queue(kind).into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.tags.push(tag.into());
        let events = consumer
            .map(move |delivery| ConsumerEvent::Delivery(kind, delivery))
            .chain(stream::once(async move { ConsumerEvent::Ended(kind) }));
        self.consumers.push(events.boxed());
        Ok(())
    }

    /// Takes deliveries as job slots free up, until stopped or cut off.
    pub(crate) async fn run(mut self, ctx: &Arc<Context>) -> SessionEnd {
        let end = loop {
            let permit = tokio::select! {
                biased;
                () = ctx.stop.cancelled() => break SessionEnd::Stopped,
                Some(reason) = self.errors.next() => break SessionEnd::Lost(reason),
                permit = Arc::clone(&ctx.slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(closed) => break SessionEnd::Lost(closed.to_string()),
                },
            };
            let event = tokio::select! {
                biased;
                () = ctx.stop.cancelled() => break SessionEnd::Stopped,
                Some(reason) = self.errors.next() => break SessionEnd::Lost(reason),
                event = self.consumers.next() => event,
            };
            match event {
                Some(ConsumerEvent::Delivery(kind, Ok(delivery))) => {
                    let ctx = Arc::clone(ctx);
                    ctx.tracker.clone().spawn(async move {
                        let _permit = permit;
                        tokio::select! {
                            () = ctx.abandon.cancelled() => {}
                            () = ctx.dispatcher.process(kind, delivery) => {}
                        }
                    });
                }
                Some(ConsumerEvent::Delivery(kind, Err(error))) => {
                    break SessionEnd::Lost(format!("consumer of {kind}: {error}"));
                }
                Some(ConsumerEvent::Ended(kind)) => {
                    if let Err(error) = self.resubscribe(ctx, kind).await {
                        break SessionEnd::Lost(format!("re-subscribing to {kind}: {error}"));
                    }
                }
                None => break SessionEnd::Lost("no consumer left".to_owned()),
            }
        };
        if matches!(end, SessionEnd::Stopped) {
            self.drain(ctx).await;
        }
        self.close().await;
        end
    }

    /// The broker cancelled a consumer (its queue was deleted, or a quorum leader moved):
    /// declare again, which recreates a missing queue, and consume again.
    async fn resubscribe(&mut self, ctx: &Context, kind: &'static str) -> Result<(), OpenError> {
        tracing::warn!(kind, "consumer cancelled by the broker; subscribing again");
        ctx.topology.declare(&self.channel).await?;
        self.subscribe(ctx, kind).await?;
        Ok(())
    }

    /// Stops deliveries, then lets running jobs finish and ack until the deadline.
    async fn drain(&mut self, ctx: &Context) {
        for tag in &self.tags {
            if let Err(error) = self
                .channel
                .basic_cancel(tag.clone(), BasicCancelOptions::default())
                .await
            {
                tracing::debug!(%error, %tag, "cancelling consumer failed");
            }
        }
        wait_for_jobs(ctx).await;
    }

    async fn close(self) {
        // Unacked deliveries, including prefetched ones never started, go back to their
        // queues when the channel closes.
        let close = async {
            let _ = self.channel.close(200, "worker leaving".into()).await;
            let _ = self.connection.close(200, "worker leaving".into()).await;
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::debug!("closing the connection timed out; dropping it");
        }
    }
}

/// Waits for in-flight jobs up to the shutdown deadline, then abandons the rest: they were
/// not acked, so the broker redelivers them.
pub(crate) async fn wait_for_jobs(ctx: &Context) {
    ctx.tracker.close();
    let in_flight = ctx.tracker.len();
    if in_flight > 0 {
        tracing::info!(in_flight, deadline = ?ctx.settings.shutdown_timeout, "waiting for running jobs");
    }
    if tokio::time::timeout(ctx.settings.shutdown_timeout, ctx.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            abandoned = ctx.tracker.len(),
            "shutdown deadline passed; unfinished jobs will be redelivered"
        );
        ctx.abandon.cancel();
        ctx.tracker.wait().await;
    }
}
