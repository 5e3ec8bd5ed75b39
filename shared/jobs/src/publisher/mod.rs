//! Publishing jobs so that none is lost: confirmed, persistent and mandatory.
//!
//! `Ok` means the broker stored the job in a queue. Every other outcome is an error to the
//! caller: unroutable (the broker returned it), nacked, no confirm in time, blocked by a
//! resource alarm for too long, or the broker unreachable until the publish deadline. A lost
//! connection is retried within that deadline, on a rebuilt lane. Every step is bounded:
//! getting a lane, writing the message (which waits while the broker blocks the connection),
//! the confirm, and closing.

mod delayed;
mod error;
mod lane;
mod outgoing;
mod settings;
mod size;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_lapin::{PoolConfig, Runtime, Timeouts};
use lapin::Confirmation;
use tokio::time::Instant;

pub use self::error::PublishError;
use self::lane::{Lane, Lanes};
pub(crate) use self::outgoing::Outgoing;
use self::outgoing::{Pending, start_publish};
pub use self::settings::PublisherSettings;
pub(crate) use self::size::{check_size, encode_within};
use crate::connection::{AmqpSettings, connection_properties};
use crate::envelope::EncodedJob;
use crate::instruments;
use crate::job::{Job, JobId};
use crate::topology::Topology;

/// Confirms awaited at once by a batch publish: enough to pipeline, bounded in memory.
const BATCH_WINDOW: usize = 1_000;

/// Publishes typed jobs; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    lanes: Lanes,
    settings: PublisherSettings,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher that connects on first use and declares `topology` on every connection.
    pub fn new(
        amqp: &AmqpSettings,
        settings: PublisherSettings,
        topology: Topology,
        name: &str,
    ) -> Result<Self, PublishError> {
        let name = format!("{name} publisher");
        let pool_config = PoolConfig {
            max_size: usize::from(settings.channels),
            timeouts: Timeouts {
                wait: Some(amqp.connect_timeout),
                create: Some(amqp.connect_timeout),
                recycle: Some(amqp.connect_timeout),
            },
            ..PoolConfig::default()
        };
        // One pool per node: a lane rebuilt after its node was lost takes the next node's.
        let pools = amqp
            .node_uris()
            .into_iter()
            .map(|uri| {
                let name = name.clone();
                deadpool_lapin::Config {
                    url: Some(uri.to_string()),
                    pool: Some(pool_config),
                }
                .create_pool(move || connection_properties(&name), Runtime::Tokio1)
                .map_err(|e| PublishError::connection("creating the connection pool", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Getting a pooled connection (from each node in turn while they fail), opening a
        // channel and declaring take a few round trips.
        let nodes = u32::try_from(pools.len()).unwrap_or(u32::MAX);
        let lane_timeout = amqp.connect_timeout.saturating_mul(2 + nodes);
        let lanes = Lanes::new(
            pools,
            amqp.nodes.clone(),
            usize::from(settings.channels),
            topology,
            lane_timeout,
        );
        Ok(Self {
            inner: Arc::new(Inner { lanes, settings }),
        })
    }

    /// Like [`Publisher::new`], but connects now, so an unreachable broker fails here.
    #[tracing::instrument(skip_all, fields(broker = %amqp.redacted()))]
    pub async fn connect(
        amqp: &AmqpSettings,
        settings: PublisherSettings,
        topology: Topology,
        name: &str,
    ) -> Result<Self, PublishError> {
        let publisher = Self::new(amqp, settings, topology, name)?;
        publisher.inner.lanes.get().await?;
        Ok(publisher)
    }

    /// Publishes one job and waits for the broker's confirm.
    #[tracing::instrument(skip_all, fields(kind = J::KIND))]
    pub async fn publish<J: Job>(&self, job: &J) -> Result<JobId, PublishError> {
        let encoded = self.encode(job)?;
        self.send(Outgoing::from(&encoded)).await?;
        Ok(encoded.id)
    }

    /// Publishes many jobs with their confirms pipelined (up to a thousand in flight, a
    /// sliding window) instead of waiting for each in turn. All or error: on error some jobs
    /// may have been stored.
    #[tracing::instrument(skip_all, fields(kind = J::KIND))]
    pub async fn publish_batch<'j, J: Job>(
        &self,
        jobs: impl IntoIterator<Item = &'j J>,
    ) -> Result<Vec<JobId>, PublishError> {
        let encoded = jobs
            .into_iter()
            .map(|job| self.encode(job))
            .collect::<Result<Vec<_>, _>>()?;
        self.send_encoded(&encoded).await
    }

    /// Publishes jobs encoded already (e.g. by a [`Catalog`](crate::Catalog) from JSON), as
    /// [`publish_batch`](Self::publish_batch) does.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    pub async fn publish_encoded(&self, jobs: &[EncodedJob]) -> Result<Vec<JobId>, PublishError> {
        for job in jobs {
            self.check_size(job)?;
        }
        self.send_encoded(jobs).await
    }

    async fn send_encoded(&self, jobs: &[EncodedJob]) -> Result<Vec<JobId>, PublishError> {
        let outgoing: Vec<Outgoing<'_>> = jobs.iter().map(Outgoing::from).collect();
        self.send_pipelined(&outgoing).await?;
        Ok(jobs.iter().map(|job| job.id).collect())
    }

    /// Whether a confirm channel is open or can be opened now (for readiness probes).
    pub async fn ready(&self) -> Result<(), PublishError> {
        self.inner.lanes.get().await.map(drop)
    }

    /// Closes channels and connections; publishing afterwards reconnects.
    pub async fn close(&self) {
        self.inner.lanes.close().await;
    }

    fn encode<J: Job>(&self, job: &J) -> Result<EncodedJob, PublishError> {
        encode_within(job, self.inner.settings.max_message_size)
    }

    fn check_size(&self, job: &EncodedJob) -> Result<(), PublishError> {
        check_size(job, self.inner.settings.max_message_size)
    }

    /// Publishes one message, reconnecting when the connection is lost, all within the
    /// publish deadline.
    pub(crate) async fn send(&self, message: Outgoing<'_>) -> Result<(), PublishError> {
        let limit = self.inner.settings.publish_timeout;
        let deadline = Instant::now() + limit;
        let mut delay = Duration::from_millis(50);
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.try_send(&message)).await;
            let result = attempt.unwrap_or_else(|_| {
                Err(PublishError::connection(
                    "publishing",
                    format!("no confirmed publish within PUBLISH_TIMEOUT ({limit:?})"),
                ))
            });
            match result {
                Err(error) if is_transient(&error) && Instant::now() + delay < deadline => {
                    tracing::warn!(%error, ?delay, "publish failed; reconnecting");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                result => return result,
            }
        }
    }

    async fn try_send(&self, message: &Outgoing<'_>) -> Result<(), PublishError> {
        let lane = self.ready_lane().await?;
        let confirm = self.start_publish(&lane, message).await?;
        self.await_confirm(&lane, confirm, message).await
    }

    /// Writes the message. Writing waits while the broker blocks the connection, so it gets
    /// the blocked timeout and then the confirm timeout.
    async fn start_publish(
        &self,
        lane: &Lane,
        message: &Outgoing<'_>,
    ) -> Result<Pending, PublishError> {
        let settings = &self.inner.settings;
        let limit = settings.blocked_timeout + settings.confirm_timeout;
        match tokio::time::timeout(limit, start_publish(lane, message)).await {
            Ok(started) => started,
            Err(_) if lane.is_blocked() => Err(PublishError::Blocked(settings.blocked_timeout)),
            Err(_) => Err(PublishError::ConfirmTimeout(limit)),
        }
    }

    /// Sends the messages on one lane with up to [`BATCH_WINDOW`] confirms in flight: once
    /// the window is full, the oldest confirm is awaited before the next publish. Whatever
    /// failed for a transient reason is sent again one by one, with reconnects.
    async fn send_pipelined(&self, messages: &[Outgoing<'_>]) -> Result<(), PublishError> {
        let mut again: Vec<&Outgoing<'_>> = Vec::new();
        match self.ready_lane().await {
            Err(error) if is_transient(&error) => again.extend(messages),
            Err(error) => return Err(error),
            Ok(lane) => {
                let mut in_flight = VecDeque::with_capacity(BATCH_WINDOW);
                let mut sent = 0;
                for message in messages {
                    if in_flight.len() >= BATCH_WINDOW
                        && let Some((oldest, confirm)) = in_flight.pop_front()
                    {
                        self.confirm_or_retry(&lane, confirm, oldest, &mut again)
                            .await?;
                    }
                    match self.start_publish(&lane, message).await {
                        Ok(confirm) => in_flight.push_back((message, confirm)),
                        Err(_) => break,
                    }
                    sent += 1;
                }
                again.extend(&messages[sent..]);
                for (message, confirm) in in_flight {
                    self.confirm_or_retry(&lane, confirm, message, &mut again)
                        .await?;
                }
            }
        }
        for message in again {
            self.send(message.clone()).await?;
        }
        Ok(())
    }

    /// Sends the messages on one lane, confirms pipelined as [`Publisher::send_pipelined`]
    /// does, but stops at the first failure instead of resending: for a caller (the outbox's
    /// relay) that keeps the messages and tries the whole batch again later.
    #[cfg_attr(not(feature = "outbox"), allow(dead_code))]
    pub(crate) async fn send_batch_once(
        &self,
        messages: &[Outgoing<'_>],
    ) -> Result<(), PublishError> {
        let lane = self.ready_lane().await?;
        let mut in_flight = VecDeque::with_capacity(BATCH_WINDOW.min(messages.len()));
        for message in messages {
            if in_flight.len() >= BATCH_WINDOW
                && let Some((oldest, confirm)) = in_flight.pop_front()
            {
                self.await_confirm(&lane, confirm, oldest).await?;
            }
            let confirm = self.start_publish(&lane, message).await?;
            in_flight.push_back((message, confirm));
        }
        for (message, confirm) in in_flight {
            self.await_confirm(&lane, confirm, message).await?;
        }
        Ok(())
    }

    /// Awaits one confirm of a batch; a transient failure queues the message for a resend.
    async fn confirm_or_retry<'m, 'a>(
        &self,
        lane: &Lane,
        confirm: Pending,
        message: &'m Outgoing<'a>,
        again: &mut Vec<&'m Outgoing<'a>>,
    ) -> Result<(), PublishError> {
        match self.await_confirm(lane, confirm, message).await {
            Err(error) if is_transient(&error) => {
                again.push(message);
                Ok(())
            }
            result => result,
        }
    }

    async fn ready_lane(&self) -> Result<Lane, PublishError> {
        let lane = self.inner.lanes.get().await?;
        lane.wait_unblocked(self.inner.settings.blocked_timeout)
            .await?;
        Ok(lane)
    }

    async fn await_confirm(
        &self,
        lane: &Lane,
        pending: Pending,
        message: &Outgoing<'_>,
    ) -> Result<(), PublishError> {
        let settings = &self.inner.settings;
        // Biased: in a pipelined batch most confirms are in already, and an unpolled timer
        // costs nothing, so the two guards are armed only for a confirm that is late.
        let confirmation = tokio::select! {
            biased;
            confirmation = pending.confirm => confirmation
                .map_err(|e| PublishError::connection("waiting for the confirm", e))?,
            blocked = lane.blocked_for(settings.blocked_timeout) => return Err(blocked),
            () = tokio::time::sleep(settings.confirm_timeout) => {
                lane.abandon();
                return Err(PublishError::ConfirmTimeout(settings.confirm_timeout));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => {
                instruments::confirmed_after(pending.sent.elapsed());
                if message.new_job {
                    instruments::published(message.routing_key);
                }
                Ok(())
            }
            Confirmation::Ack(Some(returned)) => Err(PublishError::Unroutable {
                exchange: message.exchange.to_owned(),
                routing_key: message.routing_key.to_owned(),
                reply: format!("{} {}", returned.reply_code, returned.reply_text),
            }),
            Confirmation::Nack(_) => Err(PublishError::Nacked {
                routing_key: message.routing_key.to_owned(),
            }),
            Confirmation::NotRequested => Err(PublishError::connection(
                "publishing",
                "the channel is not in confirm mode",
            )),
        }
    }
}

/// Worth retrying at once on a fresh lane: the connection or channel went away.
fn is_transient(error: &PublishError) -> bool {
    match error {
        PublishError::Connection(_) => true,
        PublishError::Topology(e) => e.is_retryable(),
        _ => false,
    }
}
