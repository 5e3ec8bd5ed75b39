//! The relay: publishes what the outbox holds, with confirms, and marks it sent.
//!
//! Each batch is claimed with `FOR UPDATE SKIP LOCKED` in a transaction held while it is
//! published, so any number of relays (one per producer replica) share the table without
//! waiting on each other, and a relay that dies before its commit leaves its rows to the
//! next one: a job is published at least once, at most once more per crash. It wakes on the
//! table's `NOTIFY` and polls as well, so a lost notification or listener costs one poll
//! period, never a job.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{OutboxSettings, backlog};
use crate::backoff::Backoff;
use crate::envelope::job_properties;
use crate::instruments;
use crate::publisher::{Outgoing, PublishError, Publisher};
use crate::topology::EXCHANGE;
use crate::trace::TraceContext;

/// The channel the table's trigger notifies.
const CHANNEL: &str = "job_outbox";
/// How often a relay that is not keeping up says so.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A job waiting longer than this means the outbox is not draining.
const LAGGING_AFTER: Duration = Duration::from_secs(5);
/// How often sent rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// Most rows one prune deletes, so it never holds many locks for long.
const PRUNE_CHUNK: i64 = 10_000;

/// Longest the relay waits for one batch: the server ends a transaction idle this long
/// (`idle_in_transaction_session_timeout`), which frees its rows for the next batch.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("outbox relay: the batch's task failed: {0}")]
    Lost(String),
    #[error("outbox database, {0}: {1}")]
    Database(&'static str, sqlx::Error),
    #[error("outbox database: {0} took longer than {1:?}")]
    Timeout(&'static str, Duration),
    #[error(transparent)]
    Publish(PublishError),
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    job_id: Uuid,
    kind: String,
    body: Vec<u8>,
    traceparent: Option<String>,
}

impl OutboxRow {
    /// The properties it is published with: its trace, if it has a valid one.
    fn properties(&self) -> lapin::BasicProperties {
        let mut headers = lapin::types::FieldTable::default();
        if let Some(trace) = self.traceparent.as_deref().and_then(TraceContext::parse) {
            trace.write_into(&mut headers);
        }
        job_properties(&self.job_id.to_string(), &self.kind, headers)
    }
}

/// Publishes the outbox's jobs; one per process that writes jobs is the usual set-up.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    publisher: Publisher,
    settings: OutboxSettings,
    timeout: Duration,
}

impl Relay {
    /// A relay reading the outbox in `pool`'s database, each statement bounded by
    /// `timeout`, publishing with `publisher` (whose topology must route every kind).
    #[must_use]
    pub fn new(
        pool: PgPool,
        publisher: Publisher,
        settings: OutboxSettings,
        timeout: Duration,
    ) -> Self {
        Self {
            pool,
            publisher,
            settings,
            timeout,
        }
    }

    /// Relays until `shutdown` completes (a batch under way is finished first), with
    /// `OUTBOX_RELAYS` loops at once: while one publishes its batch, another claims and
    /// marks its own (they share the table as separate relays do). Failures are logged and
    /// retried with backoff: a relay never stops on its own.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let stop = CancellationToken::new();
        tracing::info!(
            batch = self.settings.batch,
            loops = self.settings.relays,
            "outbox relay started"
        );
        let loops: Vec<_> = (0..self.settings.relays.max(1))
            .map(|n| tokio::spawn(self.clone().relay_loop(n == 0, stop.clone())))
            .collect();
        shutdown.await;
        stop.cancel();
        for running in loops {
            if let Err(error) = running.await {
                tracing::error!(%error, "outbox relay: a loop ended abnormally");
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// One loop: a batch, then at once another if it was full, else a wait for work. The
    /// first loop also reports a backlog that is not draining and prunes sent rows.
    async fn relay_loop(self, housekeeper: bool, stop: CancellationToken) {
        let mut listener: Option<PgListener> = None;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut last_report = Instant::now();
        let mut last_prune = Instant::now();
        while !stop.is_cancelled() {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let relayed = self.relay_batch().await;
            if housekeeper && last_report.elapsed() >= REPORT_EVERY {
                last_report = Instant::now();
                self.report_lag().await;
            }
            if housekeeper && last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                self.prune().await;
            }
            let retry_in = match relayed {
                // More may be waiting: no pause.
                Ok(relayed) if relayed == self.settings.batch as usize => {
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    None
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "outbox relay: batch not relayed");
                    Some(delay)
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.pause(retry_in, &mut listener) => {}
            }
        }
    }

    /// Listens for the table's notifications; `None` (polling only) if that fails now.
    async fn listen(&self) -> Option<PgListener> {
        // On a connection of its own, outside the app's pool: a listener holds its
        // connection for as long as it listens, and would take a slot of the pool away.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*self.pool.connect_options()).clone());
        let listening = async {
            let mut listener = PgListener::connect_with(&own).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match self.bounded("listening", listening).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "outbox relay: not listening; polling only for now");
                None
            }
        }
    }

    /// After a failure, waits `retry_in`; otherwise until there is work.
    async fn pause(&self, retry_in: Option<Duration>, listener: &mut Option<PgListener>) {
        match retry_in {
            Some(delay) => tokio::time::sleep(delay).await,
            None => self.wait_for_work(listener).await,
        }
    }

    /// Waits for a notification, at most one poll period. Notifications that piled up while
    /// a batch was published are taken together: one look at the table serves them all.
    async fn wait_for_work(&self, listener: &mut Option<PgListener>) {
        let poll = self.settings.poll_interval;
        let Some(active) = listener else {
            tokio::time::sleep(poll).await;
            return;
        };
        match tokio::time::timeout(poll, active.recv()).await {
            Ok(Ok(_)) => while active.next_buffered().is_some() {},
            Ok(Err(error)) => {
                tracing::warn!(%error, "outbox relay: listener lost; polling until it is back");
                *listener = None;
            }
            Err(_) => {}
        }
    }

    /// Claims a batch, publishes it and marks it sent, in one transaction; returns how many
    /// rows it claimed. A transient publishing failure rolls everything back (the rows are
    /// published again later); a job the broker refuses (unroutable, too large) is set aside
    /// with its reason and tried again later, never dropped.
    ///
    /// The batch runs as a task of its own: cancelled mid-`BEGIN` or mid-`COMMIT` by a
    /// deadline, it would hand its connection back to the pool inside the transaction. Its
    /// statements are bounded by the server (`statement_timeout`), its publishes by the
    /// publisher's deadlines; past [`BATCH_TIMEOUT`] the relay stops waiting for it.
    async fn relay_batch(&self) -> Result<usize, RelayError> {
        let relay = self.clone();
        let batch = tokio::spawn(async move { relay.claim_and_publish().await });
        match tokio::time::timeout(BATCH_TIMEOUT, batch).await {
            Ok(Ok(relayed)) => relayed,
            Ok(Err(lost)) => Err(RelayError::Lost(lost.to_string())),
            Err(_) => Err(RelayError::Timeout("a batch", BATCH_TIMEOUT)),
        }
    }

    async fn claim_and_publish(&self) -> Result<usize, RelayError> {
        // Rows are claimed only once the broker answers: while it is away they stay free.
        self.publisher.ready().await.map_err(RelayError::Publish)?;
        let database = |what| move |e| RelayError::Database(what, e);
        let mut tx = self.pool.begin().await.map_err(database("beginning"))?;
        let rows = sqlx::query_as::<_, OutboxRow>(
            "SELECT id, job_id, kind, body, traceparent FROM job_outbox
             WHERE sent_at IS NULL AND not_before <= now()
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(self.settings.batch))
        .fetch_all(&mut *tx)
        .await
        .map_err(database("claiming a batch"))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let (sent, refused) = self.publish(&rows).await?;
        mark_sent(&mut tx, &sent)
            .await
            .map_err(database("marking jobs sent"))?;
        for (row, error) in refused {
            tracing::error!(job_id = %row.job_id, kind = row.kind, %error,
                "outbox relay: the broker refused a job; it stays in the outbox and is tried again later");
            set_aside(&mut tx, row.id, &error)
                .await
                .map_err(database("setting a job aside"))?;
        }
        // Losing this commit in a server crash only publishes the batch again (at least
        // once, as a relay crash does): no need to wait for the WAL flush.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(database("relaxing the commit"))?;
        tx.commit().await.map_err(database("committing"))?;
        tracing::debug!(relayed = sent.len(), "outbox relay: batch published");
        Ok(rows.len())
    }

    /// Publishes the rows, confirms pipelined; if the broker refuses one, goes through them
    /// one by one to tell which. Returns the ids sent and the rows refused.
    async fn publish<'r>(
        &self,
        rows: &'r [OutboxRow],
    ) -> Result<(Vec<i64>, Vec<(&'r OutboxRow, PublishError)>), RelayError> {
        let properties: Vec<_> = rows.iter().map(OutboxRow::properties).collect();
        let outgoing: Vec<Outgoing<'_>> = rows
            .iter()
            .zip(properties)
            .map(|(row, properties)| Outgoing {
                exchange: EXCHANGE,
                routing_key: &row.kind,
                body: &row.body,
                properties,
                new_job: true,
            })
            .collect();
        match self.publisher.send_batch_once(&outgoing).await {
            Ok(()) => return Ok((rows.iter().map(|row| row.id).collect(), Vec::new())),
            Err(error) if error.is_retryable() => return Err(RelayError::Publish(error)),
            Err(_) => {}
        }
        let (mut sent, mut refused) = (Vec::new(), Vec::new());
        for (row, message) in rows.iter().zip(outgoing) {
            match self.publisher.send(message).await {
                Ok(()) => sent.push(row.id),
                Err(error) if error.is_retryable() => break,
                Err(error) => refused.push((row, error)),
            }
        }
        Ok((sent, refused))
    }

    /// Sets the backlog gauges; logs how many jobs wait and for how long, when the oldest has
    /// waited a while.
    async fn report_lag(&self) {
        let reading = async {
            let mut connection = self.pool.acquire().await?;
            backlog(&mut connection).await
        };
        let backlog = match self.bounded("reading the backlog", reading).await {
            Ok(backlog) => backlog,
            Err(error) => {
                tracing::warn!(%error, "outbox relay: could not read the backlog");
                return;
            }
        };
        instruments::outbox_backlog(backlog.waiting, backlog.oldest);
        if backlog.oldest >= LAGGING_AFTER {
            tracing::warn!(
                waiting = backlog.waiting,
                oldest_secs = backlog.oldest.as_secs(),
                "outbox not draining: jobs are waiting for the broker"
            );
        }
    }

    /// Deletes rows sent longer than `keep_sent` ago, a chunk at a time.
    async fn prune(&self) {
        let delete = sqlx::query(
            "DELETE FROM job_outbox WHERE id IN (
                 SELECT id FROM job_outbox
                 WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)",
        )
        .bind(self.settings.keep_sent.as_secs_f64())
        .bind(PRUNE_CHUNK)
        .execute(&self.pool);
        match self.bounded("pruning", delete).await {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::debug!(
                    pruned = done.rows_affected(),
                    "outbox relay: sent rows pruned"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "outbox relay: could not prune sent rows"),
        }
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, RelayError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result.map_err(|e| RelayError::Database(what, e)),
            Err(_) => Err(RelayError::Timeout(what, self.timeout)),
        }
    }
}

async fn mark_sent(tx: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE job_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY($1)")
        .bind(ids)
        .execute(tx)
        .await
        .map(drop)
}

/// Sets a refused job aside: tried again after a minute, doubling up to an hour.
async fn set_aside(
    tx: &mut PgConnection,
    id: i64,
    error: &PublishError,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE job_outbox SET attempts = attempts + 1, last_error = $2,
             not_before = now() + least(interval '1 minute' * power(2, least(attempts, 6)), interval '1 hour')
         WHERE id = $1",
    )
    .bind(id)
    .bind(error.to_string())
    .execute(tx)
    .await
    .map(drop)
}
