//! A job's state as a domain's status pages show it, stored in its `<domain>_jobs` table and
//! written from the runtime's job events.

use std::collections::BTreeMap;

use rabbitmq_jobs::JobOutcome;
use serde::{Deserialize, Serialize};

/// Where one job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum JobState {
    /// Published, not yet taken by a worker.
    Queued,
    /// A worker runs it.
    Running,
    /// A run failed; it waits for its next attempt.
    Retrying,
    /// Finished.
    Done,
    /// Dead-lettered: failed permanently or out of attempts.
    Failed,
    /// Its retry or dead-letter copy could not be published; the broker will deliver it
    /// again, so it is still on its way.
    Stalled,
}

impl JobState {
    /// The state an event leaves its job in, and the failure to show with it.
    #[must_use]
    pub fn after<'a>(outcome: &JobOutcome<'a>) -> (Self, Option<&'a str>) {
        match *outcome {
            JobOutcome::Started => (Self::Running, None),
            JobOutcome::Succeeded => (Self::Done, None),
            JobOutcome::Retrying { reason, .. } => (Self::Retrying, Some(reason)),
            JobOutcome::Failed { reason } => (Self::Failed, Some(reason)),
            JobOutcome::Stalled { reason } => (Self::Stalled, Some(reason)),
            JobOutcome::Requeued { reason } => (Self::Queued, Some(reason)),
        }
    }
}

/// How many jobs of each kind wait for their next attempt in a domain's `<domain>_jobs`
/// `table` (a partial index on `kind WHERE state = 'retrying'` keeps it cheap): the
/// dashboard's per-kind retries.
pub async fn jobs_retrying(
    db: &crate::Database,
    table: &'static str,
) -> Result<Vec<(String, i64)>, crate::StoreError> {
    let query = format!(
        "SELECT kind, count(*) FROM {table} WHERE state = 'retrying' GROUP BY kind ORDER BY kind"
    );
    let counting = sqlx::query_as(sqlx::AssertSqlSafe(query)).fetch_all(db.pool());
    db.bounded("counting retrying jobs", counting).await
}

/// A job's state as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// Where it stands.
    pub state: JobState,
    /// Runs so far.
    pub attempt: u32,
    /// The last failure, for `retrying` and `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job's row as a domain's `<domain>_jobs` table holds it (`SELECT kind, state, attempt,
/// error`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// The job's kind.
    pub kind: String,
    /// Where it stands.
    pub state: JobState,
    /// Runs so far.
    pub attempt: i32,
    /// The last failure.
    pub error: Option<String>,
}

/// The jobs' rows as shown: each job's status by kind.
#[must_use]
pub fn job_statuses(rows: Vec<JobRow>) -> BTreeMap<String, JobStatus> {
    rows.into_iter()
        .map(|job| {
            let status = JobStatus {
                state: job.state,
                attempt: u32::try_from(job.attempt).unwrap_or(0),
                error: job.error,
            };
            (job.kind, status)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_job_is_written_stalled() {
        let json = serde_json::to_string(&JobState::Stalled).unwrap_or_default();
        assert_eq!(json, r#""stalled""#);
    }
}
