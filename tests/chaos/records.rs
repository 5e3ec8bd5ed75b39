//! The harness's questions to the chaos kinds' records (`chaos_runs`, `chaos_processed`,
//! `chaos_ledger`): what was handled when and by whom, and how often.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rabbitmq_jobs::JobId;
use sqlx::PgPool;
use uuid::Uuid;

/// Every query is answered within this or fails.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

async fn within<T>(query: impl Future<Output = Result<T, sqlx::Error>>) -> anyhow::Result<T> {
    Ok(tokio::time::timeout(DEADLINE, query).await??)
}

/// When the first effect after `after` was applied.
pub async fn first_handled_after(
    pool: &PgPool,
    after: DateTime<Utc>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    within(
        sqlx::query_scalar("SELECT min(at) FROM chaos_processed WHERE at > $1")
            .bind(after)
            .fetch_one(pool),
    )
    .await
}

/// When `worker` first ran a chaos job after `after`.
pub async fn first_run_by(
    pool: &PgPool,
    worker: &str,
    after: DateTime<Utc>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    within(
        sqlx::query_scalar("SELECT min(at) FROM chaos_runs WHERE worker = $1 AND at > $2")
            .bind(worker)
            .bind(after)
            .fetch_one(pool),
    )
    .await
}

/// Effects applied so far.
pub async fn handled_count(pool: &PgPool) -> anyhow::Result<i64> {
    within(sqlx::query_scalar("SELECT count(*) FROM chaos_processed").fetch_one(pool)).await
}

/// Runs of job `id` so far.
pub async fn runs_of(pool: &PgPool, id: &str) -> anyhow::Result<i64> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(0);
    };
    within(
        sqlx::query_scalar("SELECT count(*) FROM chaos_runs WHERE job_id = $1")
            .bind(id)
            .fetch_one(pool),
    )
    .await
}

/// Whether job `id`'s effect was applied.
pub async fn is_handled(pool: &PgPool, id: &str) -> anyhow::Result<bool> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(false);
    };
    within(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM chaos_processed WHERE job_id = $1)")
            .bind(id)
            .fetch_one(pool),
    )
    .await
}

/// Runs of redelivered jobs by workers other than `worker` between `from` and `to`.
pub async fn redelivered_to_others(
    pool: &PgPool,
    worker: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<i64> {
    within(
        sqlx::query_scalar(
            "SELECT count(*) FROM chaos_runs \
             WHERE redelivered AND worker <> $1 AND at BETWEEN $2 AND $3",
        )
        .bind(worker)
        .bind(from)
        .bind(to)
        .fetch_one(pool),
    )
    .await
}

/// The ids whose effect was applied.
pub async fn handled_ids(pool: &PgPool) -> anyhow::Result<HashSet<JobId>> {
    let ids: Vec<Uuid> =
        within(sqlx::query_scalar("SELECT job_id FROM chaos_processed").fetch_all(pool)).await?;
    Ok(ids.into_iter().map(JobId).collect())
}

/// Job ids with more than one effect in the ledger.
pub async fn double_effects(pool: &PgPool) -> anyhow::Result<Vec<(Uuid, i64)>> {
    within(
        sqlx::query_as(
            "SELECT job_id, count(*) FROM chaos_ledger GROUP BY job_id HAVING count(*) > 1",
        )
        .fetch_all(pool),
    )
    .await
}

/// Of `chaos_effect`: runs, distinct jobs run, and runs the broker flagged as redelivered.
pub async fn effect_runs(pool: &PgPool) -> anyhow::Result<(i64, i64, i64)> {
    within(
        sqlx::query_as(
            "SELECT count(*), count(DISTINCT job_id), count(*) FILTER (WHERE redelivered) \
             FROM chaos_runs WHERE kind = 'chaos_effect'",
        )
        .fetch_one(pool),
    )
    .await
}
