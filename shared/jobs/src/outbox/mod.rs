//! The transactional outbox (feature `outbox`): a job is written in the caller's own
//! PostgreSQL transaction, beside the rows it is about, and a [`Relay`] publishes it after
//! the commit. The job exists if and only if the caller's rows do, whether or not the broker
//! is reachable when the transaction commits.
//!
//! The table is `job_outbox` ([`MIGRATOR`] creates it; its history table is
//! `_jobs_migrations`). A row holds the job exactly as it goes on the wire, so the relay
//! needs nothing of the domain that wrote it.

mod relay;

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

pub use self::relay::Relay;
use crate::connection::parse_duration;
use crate::envelope::EncodedJob;
use crate::job::{Job, JobId};
use crate::publisher::{PublishError, check_size, encode_within};

/// The outbox's migrations, built in, with a history table of their own so that they sit
/// beside any domain's.
pub static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("_jobs_migrations");
    migrator
});

/// The outbox's table, for grants.
pub const OUTBOX_TABLE: &str = "job_outbox";

/// How the outbox fills and drains.
#[derive(Debug, Clone, clap::Args)]
pub struct OutboxSettings {
    /// Most unsent jobs the outbox holds: beyond it (the broker has been away long), new
    /// work is refused with "try again later" instead of the table growing without bound.
    #[arg(long, env = "OUTBOX_MAX_UNSENT", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unsent: u32,
    /// Relay loops per process: while one publishes its batch, another claims and marks.
    #[arg(long, env = "OUTBOX_RELAYS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub relays: u16,
    /// Jobs one relay loop publishes per transaction.
    #[arg(long, env = "OUTBOX_BATCH", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// How often a relay looks at the table when no notification woke it.
    #[arg(long, env = "OUTBOX_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// How long sent rows are kept (to see what went out, and when) before they are pruned.
    #[arg(long, env = "OUTBOX_KEEP_SENT", default_value = "10m", value_parser = parse_duration)]
    pub keep_sent: Duration,
    /// What a caller refused for a full outbox is told to wait.
    #[arg(long, env = "OUTBOX_RETRY_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub retry_after: Duration,
    /// Largest encoded job accepted, in bytes (as `MAX_MESSAGE_SIZE` for direct publishing).
    #[arg(id = "outbox_max_message_size", long = "outbox-max-message-size",
          env = "MAX_MESSAGE_SIZE", default_value_t = 16 * 1024 * 1024)]
    pub max_message_size: usize,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_unsent: 100_000,
            relays: 2,
            batch: 500,
            poll_interval: Duration::from_secs(1),
            keep_sent: Duration::from_secs(600),
            retry_after: Duration::from_secs(30),
            max_message_size: 16 * 1024 * 1024,
        }
    }
}

/// Why jobs could not be written to the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The outbox holds as many unsent jobs as it may: the broker has been unreachable for a
    /// while. Nothing was written; try again after `retry_after`.
    #[error(
        "the outbox holds {limit} unsent jobs (OUTBOX_MAX_UNSENT): the broker has been away; try again later"
    )]
    Full {
        /// The limit reached.
        limit: u32,
        /// What the caller should tell its client to wait.
        retry_after: Duration,
    },
    /// A job could not be encoded, or is larger than the broker takes.
    #[error(transparent)]
    Job(PublishError),
    /// The statement failed (the caller's transaction is then aborted).
    #[error("writing to the outbox: {0}")]
    Database(#[from] sqlx::Error),
}

/// Writes jobs into the caller's transactions; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    settings: OutboxSettings,
}

impl Outbox {
    /// An outbox with `settings`; its table is in whatever database the callers' transactions
    /// are.
    #[must_use]
    pub fn new(settings: OutboxSettings) -> Self {
        Self { settings }
    }

    /// Its settings.
    #[must_use]
    pub fn settings(&self) -> &OutboxSettings {
        &self.settings
    }

    /// Encodes a job for [`Outbox::enqueue`], checking its size.
    pub fn encode<J: Job>(&self, job: &J) -> Result<EncodedJob, OutboxError> {
        encode_within(job, self.settings.max_message_size).map_err(OutboxError::Job)
    }

    /// Writes `jobs` in the caller's transaction (pass `&mut *tx`): they are published once
    /// it commits, and never if it rolls back. One statement, which writes nothing and
    /// answers [`OutboxError::Full`] when the outbox holds `max_unsent` unsent jobs already.
    /// The caller bounds it, with the rest of its transaction.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        jobs: &[EncodedJob],
    ) -> Result<Vec<JobId>, OutboxError> {
        for job in jobs {
            self.check_size(job)?;
        }
        let ids: Vec<uuid::Uuid> = jobs.iter().map(|job| job.id.0).collect();
        let kinds: Vec<&str> = jobs.iter().map(|job| job.kind).collect();
        let bodies: Vec<&[u8]> = jobs.iter().map(|job| job.body.as_slice()).collect();
        let traces: Vec<String> = jobs.iter().map(|job| job.trace.to_string()).collect();
        // Counting stops at the limit, on the index of unsent rows: cheap while the broker
        // keeps up, bounded when it does not.
        let written = sqlx::query(
            "INSERT INTO job_outbox (job_id, kind, body, traceparent)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $5::text[])
             WHERE (SELECT count(*) FROM (
                        SELECT 1 FROM job_outbox WHERE sent_at IS NULL LIMIT $4
                    ) AS unsent) < $4",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&bodies)
        .bind(i64::from(self.settings.max_unsent))
        .bind(&traces)
        .execute(tx)
        .await?;
        if written.rows_affected() == 0 && !jobs.is_empty() {
            tracing::warn!(
                limit = self.settings.max_unsent,
                "outbox full: work refused"
            );
            return Err(OutboxError::Full {
                limit: self.settings.max_unsent,
                retry_after: self.settings.retry_after,
            });
        }
        Ok(jobs.iter().map(|job| job.id).collect())
    }

    fn check_size(&self, job: &EncodedJob) -> Result<(), OutboxError> {
        check_size(job, self.settings.max_message_size).map_err(OutboxError::Job)
    }
}

/// What is waiting in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Unsent jobs.
    pub waiting: i64,
    /// How long the oldest of them has waited.
    pub oldest: Duration,
}

/// Reads the backlog (one index scan of the unsent rows).
pub async fn backlog(connection: &mut PgConnection) -> Result<Backlog, sqlx::Error> {
    let (waiting, oldest_seconds): (i64, f64) = sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
         FROM job_outbox WHERE sent_at IS NULL",
    )
    .fetch_one(connection)
    .await?;
    Ok(Backlog {
        waiting,
        oldest: Duration::try_from_secs_f64(oldest_seconds).unwrap_or_default(),
    })
}
