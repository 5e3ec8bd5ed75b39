//! The chaos run's own job kinds and their records, shared by the harness (which publishes
//! them and reads the records) and the chaos worker (which handles them).
//!
//! `chaos_effect` applies its effect exactly once per job id however often it runs: every run
//! is appended to `chaos_runs`, and one transaction claims the id in `chaos_processed` and,
//! only if the claim is new, writes the effect to `chaos_ledger`. The ledger has no unique
//! constraint, so a double effect would show as two rows.

use std::time::Duration;

use rabbitmq_jobs::{Job, JobContext, JobId};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A job whose effect is recorded keyed by its id: the bulk of the chaos run's load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosEffect {
    /// The harness's number for it (a publish retried after an error keeps its number).
    pub seq: u64,
}

impl Job for ChaosEffect {
    const KIND: &'static str = "chaos_effect";
    const VERSION: u32 = 1;
}

/// Poison: its handler panics every time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosPanic {
    /// Which plant.
    pub plant: u32,
}

impl Job for ChaosPanic {
    const KIND: &'static str = "chaos_panic";
    const VERSION: u32 = 1;
}

/// Poison: its handler aborts the worker process every time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosAbort {
    /// Which plant.
    pub plant: u32,
}

impl Job for ChaosAbort {
    const KIND: &'static str = "chaos_abort";
    const VERSION: u32 = 1;
}

/// The chaos kinds.
pub const KINDS: [&str; 3] = [ChaosEffect::KIND, ChaosPanic::KIND, ChaosAbort::KIND];

/// The records' tables, apart from the app's migrations.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chaos_runs (
    job_id uuid NOT NULL,
    kind text NOT NULL,
    seq bigint NOT NULL,
    worker text NOT NULL,
    attempt integer NOT NULL,
    redelivered boolean NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS chaos_runs_at ON chaos_runs (at);
CREATE TABLE IF NOT EXISTS chaos_processed (
    job_id uuid PRIMARY KEY,
    worker text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS chaos_processed_at ON chaos_processed (at);
CREATE TABLE IF NOT EXISTS chaos_ledger (
    job_id uuid NOT NULL,
    seq bigint NOT NULL,
    worker text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
";

/// A small pool on `url` that gives up on a connection after a few seconds.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
}

/// Creates the record tables if they do not exist.
pub async fn create_tables(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(pool).await.map(drop)
}

/// Lets `role` (the workers' database role) append to the record tables, and nothing more.
pub async fn grant_to(pool: &PgPool, role: &str) -> Result<(), sqlx::Error> {
    // The server quotes the role (`%I`), as `db-setup` does.
    let grant: String = sqlx::query_scalar(
        "SELECT format('GRANT INSERT ON chaos_runs, chaos_processed, chaos_ledger TO %I', $1::text)",
    )
    .bind(role)
    .fetch_one(pool)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(grant))
        .execute(pool)
        .await
        .map(drop)
}

/// Appends one run of a chaos job, committed on its own.
pub async fn record_run(
    pool: &PgPool,
    kind: &str,
    seq: u64,
    worker: &str,
    ctx: &JobContext,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chaos_runs (job_id, kind, seq, worker, attempt, redelivered) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ctx.id.0)
    .bind(kind)
    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
    .bind(worker)
    .bind(i32::try_from(ctx.attempt).unwrap_or(i32::MAX))
    .bind(ctx.redelivered)
    .execute(pool)
    .await
    .map(drop)
}

/// Applies the effect of job `id` unless it was applied before; true if it was applied now.
pub async fn apply_effect(
    pool: &PgPool,
    id: JobId,
    seq: u64,
    worker: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO chaos_processed (job_id, worker) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id.0)
    .bind(worker)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        sqlx::query("INSERT INTO chaos_ledger (job_id, seq, worker) VALUES ($1, $2, $3)")
            .bind(id.0)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(worker)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(claimed)
}
