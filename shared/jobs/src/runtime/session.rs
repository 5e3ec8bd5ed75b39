//! One connection's life: declare, subscribe, dispatch deliveries, until the connection is
//! lost or the worker stops.
//!
//! Consuming happens on a connection of its own: a broker alarm blocks publishing
//! connections, and acks must keep flowing while retries and dead letters wait on it. Each
//! kind's consumer has a prefetch equal to the kind's concurrency, so every delivery the
//! worker holds is running: none waits in a buffer while the broker's `consumer_timeout` runs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::delivery::{Dispatcher, Origin, Received};
use super::settings::WorkerSettings;
use crate::backoff::Backoff;
use crate::connection::AmqpSettings;
use crate::topology::{Topology, TopologyError, work_queue};

/// What every session of a worker shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) amqp: AmqpSettings,
    pub(crate) settings: WorkerSettings,
    pub(crate) topology: Topology,
    pub(crate) dispatcher: Dispatcher,
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
    TimedOut(Duration),
}

/// How long one broker operation of a session may take (declaring, subscribing, a
/// `basic.get`): a broker that accepted the socket but never answers must not stall it.
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the session looks after its quarantine and its refused kinds.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

// Each event is moved through the stream once and never stored, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum ConsumerEvent {
    Delivery(&'static str, lapin::Result<Delivery>),
    /// The consumer's stream ended: cancelled (by us or the broker), or its channel closed.
    Ended(&'static str),
}

pub(crate) struct Session {
    connection: Connection,
    pub(super) channel: Channel,
    pub(super) consumers: SelectAll<BoxStream<'static, ConsumerEvent>>,
    /// The connection's errors, watched even while jobs run: a session that only learnt of a
    /// lost connection from its consumers would not notice it while they are idle.
    pub(super) errors: BoxStream<'static, String>,
    pub(super) tags: Vec<ShortString>,
    /// Kinds subscribed to; the others were refused by the broker and are tried again.
    pub(super) ready: Vec<&'static str>,
    refused: Vec<&'static str>,
    retry_refused: (Backoff, Instant),
    /// This session's jobs; cancelled when its connection is lost, for their deliveries can
    /// no longer be acked and the broker hands them to another worker.
    pub(super) jobs: TaskTracker,
    /// Cancelled when the connection is lost, and (a child of `abandon`) when the shutdown
    /// deadline passes.
    lost: CancellationToken,
}

/// Runs `future`, or fails after [`BROKER_TIMEOUT`].
pub(super) async fn bounded<T>(
    future: impl Future<Output = Result<T, OpenError>>,
) -> Result<T, OpenError> {
    tokio::time::timeout(BROKER_TIMEOUT, future)
        .await
        .unwrap_or(Err(OpenError::TimedOut(BROKER_TIMEOUT)))
}

impl Session {
    /// Connects, declares the topology and subscribes to every kind the broker accepts.
    pub(crate) async fn open(ctx: &Context) -> Result<Self, OpenError> {
        let name = format!("{} consumer", ctx.settings.name);
        let connection = ctx.amqp.connect(&name).await?;
        // A channel error (a refused declaration on its own channel) leaves the connection
        // up; the operation that caused it reports it.
        let errors = connection
            .events_listener()
            .filter_map(|event| async move {
                match event {
                    lapin::Event::Error(error) if !is_channel_error(&error) => {
                        Some(error.to_string())
                    }
                    _ => None,
                }
            })
            .boxed();
        let declared = ctx.topology.declare(&connection).await?;
        let channel = connection.create_channel().await?;
        let (ready, refused) = ctx
            .dispatcher
            .registry
            .kinds()
            .partition(|kind| declared.is_ready(kind));
        let mut session = Self {
            connection,
            channel,
            consumers: SelectAll::new(),
            errors,
            tags: Vec::new(),
            ready,
            refused,
            retry_refused: (Backoff::default(), Instant::now() + HOUSEKEEPING),
            jobs: TaskTracker::new(),
            // A child of `abandon`: each job then waits on one token for both.
            lost: ctx.abandon.child_token(),
        };
        session.subscribe_all(ctx).await?;
        Ok(session)
    }

    pub(super) async fn subscribe_all(&mut self, ctx: &Context) -> Result<(), lapin::Error> {
        for kind in self.ready.clone() {
            self.subscribe(ctx, kind).await?;
        }
        Ok(())
    }

    /// Consumes `kind` with a prefetch of its concurrency (`basic.qos` applies to the
    /// consumers started after it on the channel).
    async fn subscribe(&mut self, ctx: &Context, kind: &'static str) -> Result<(), lapin::Error> {
        let prefetch = ctx
            .dispatcher
            .registry
            .get(kind)
            .map_or(1, |entry| entry.concurrency);
        self.channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
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

    /// Takes deliveries as they come, until stopped or cut off.
    pub(crate) async fn run(mut self, ctx: &Arc<Context>) -> SessionEnd {
        tracing::info!(kinds = ?self.ready, refused = ?self.refused, "consuming");
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let end = loop {
            tokio::select! {
                biased;
                () = ctx.stop.cancelled() => break SessionEnd::Stopped,
                Some(reason) = self.errors.next() => break SessionEnd::Lost(reason),
                Some(event) = self.consumers.next(), if !self.consumers.is_empty() => {
                    if let Err(end) = self.on_event(ctx, event).await {
                        break end;
                    }
                }
                _ = housekeeping.tick() => {
                    if let Err(end) = self.housekeeping(ctx).await {
                        break end;
                    }
                }
            }
        };
        match &end {
            SessionEnd::Stopped => self.drain(ctx).await,
            SessionEnd::Lost(_) => self.lost.cancel(),
        }
        self.close().await;
        end
    }

    pub(super) async fn on_event(
        &mut self,
        ctx: &Arc<Context>,
        event: ConsumerEvent,
    ) -> Result<(), SessionEnd> {
        match event {
            ConsumerEvent::Delivery(kind, Ok(delivery)) => {
                self.spawn(ctx, kind, delivery, Origin::Work);
                Ok(())
            }
            ConsumerEvent::Delivery(kind, Err(error)) => {
                Err(SessionEnd::Lost(format!("consumer of {kind}: {error}")))
            }
            ConsumerEvent::Ended(kind) => self
                .resubscribe(ctx, kind)
                .await
                .map_err(|error| SessionEnd::Lost(format!("re-subscribing to {kind}: {error}"))),
        }
    }

    /// Runs one delivery in a task of its own, tracked by the worker (for shutdown) and by
    /// this session (for a connection loss, and for running a suspect alone).
    pub(super) fn spawn(
        &self,
        ctx: &Arc<Context>,
        kind: &'static str,
        delivery: Delivery,
        origin: Origin,
    ) {
        let received = Received {
            kind,
            delivery,
            origin,
            at: Instant::now(),
        };
        let (job_ctx, lost) = (Arc::clone(ctx), self.lost.clone());
        let job = self.jobs.track_future(async move {
            tokio::select! {
                () = lost.cancelled() => {}
                () = job_ctx.dispatcher.process(received) => {}
            }
        });
        ctx.tracker.spawn(job);
    }

    /// The broker cancelled a consumer (its queue was deleted, or a quorum leader moved):
    /// declare again, which recreates a missing queue, and consume again if it is there.
    async fn resubscribe(&mut self, ctx: &Context, kind: &'static str) -> Result<(), OpenError> {
        tracing::warn!(kind, "consumer cancelled by the broker; subscribing again");
        self.ready.retain(|k| *k != kind);
        self.refused.push(kind);
        self.retry_refused.1 = Instant::now();
        self.retry_refused_kinds(ctx).await
    }

    /// Looks after what is not a delivery: refused kinds are tried again, and suspects in
    /// quarantine are run alone.
    async fn housekeeping(&mut self, ctx: &Arc<Context>) -> Result<(), SessionEnd> {
        let lost = |error: OpenError| SessionEnd::Lost(error.to_string());
        if !self.refused.is_empty() && Instant::now() >= self.retry_refused.1 {
            self.retry_refused_kinds(ctx).await.map_err(lost)?;
        }
        if self.has_suspects().await.map_err(lost)? {
            self.run_suspects(ctx).await?;
        }
        Ok(())
    }

    /// Declares the topology again and subscribes to the refused kinds that are now there.
    async fn retry_refused_kinds(&mut self, ctx: &Context) -> Result<(), OpenError> {
        let declared = bounded(async { Ok(ctx.topology.declare(&self.connection).await?) }).await?;
        let (now_ready, still): (Vec<_>, Vec<_>) = self
            .refused
            .drain(..)
            .partition(|kind| declared.is_ready(kind));
        self.refused = still;
        for kind in now_ready {
            tracing::info!(kind, "the broker has this kind's queues now; consuming it");
            bounded(async { Ok(self.subscribe(ctx, kind).await?) }).await?;
            self.ready.push(kind);
        }
        let (backoff, next) = &mut self.retry_refused;
        if self.refused.is_empty() {
            backoff.reset();
        } else {
            *next = Instant::now() + backoff.next_delay().max(HOUSEKEEPING);
        }
        Ok(())
    }

    /// Stops deliveries, then lets running jobs finish and ack until the deadline.
    async fn drain(&mut self, ctx: &Context) {
        // Whatever the cancels say, the jobs running get their deadline.
        let _ = self.cancel_consumers().await;
        wait_for_jobs(ctx).await;
    }

    /// Cancels every consumer; deliveries the broker already sent still come out of the
    /// streams, which then end. False if a cancel failed (the channel is in trouble).
    pub(super) async fn cancel_consumers(&mut self) -> bool {
        let mut all = true;
        for tag in self.tags.drain(..) {
            let cancel = self
                .channel
                .basic_cancel(tag.clone(), BasicCancelOptions::default());
            let failed = match tokio::time::timeout(BROKER_TIMEOUT, cancel).await {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {BROKER_TIMEOUT:?}"),
            };
            tracing::debug!(%tag, %failed, "cancelling consumer failed");
            all = false;
        }
        all
    }

    async fn close(self) {
        // Unacked deliveries go back to their queues when the channel closes.
        let close = async {
            let _ = self.channel.close(200, "worker leaving".into()).await;
            let _ = self.connection.close(200, "worker leaving".into()).await;
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::debug!("closing the connection timed out; dropping it");
        }
    }
}

/// Whether `error` closed only a channel (a soft error), not the connection.
fn is_channel_error(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(_)))
}

/// How long closing may take: the connection may already be half gone.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

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
