//! The job library's outbox as a [`Schema`] beside the domains': `db-setup` migrates its
//! table and grants the producer, which writes jobs and relays them, what that takes; and
//! the one error of a transaction that writes a domain's rows with their jobs.

use std::future::Future;

use rabbitmq_jobs::outbox::{MIGRATOR, OUTBOX_TABLE, OutboxError};

use crate::{Database, Schema, StoreError};

/// The producer writes jobs in its transactions, its relay claims, marks and prunes them.
const PRODUCER_RIGHTS: &[(&str, &str)] = &[(
    OUTBOX_TABLE,
    "SELECT, INSERT, DELETE, UPDATE (sent_at, attempts, not_before, last_error)",
)];

/// The outbox's schema, for `db-setup` and the producer's start-up check. Workers publish
/// directly and have no rights on it.
#[must_use]
pub fn outbox_schema() -> Schema {
    Schema {
        name: "job outbox",
        migrator: &MIGRATOR,
        producer: PRODUCER_RIGHTS,
        worker: &[],
    }
}

/// Why rows and their jobs were not written (the transaction rolled back: neither was).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database failed or was too slow.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbox is full, or a job cannot be sent as it is.
    #[error(transparent)]
    Outbox(OutboxError),
}

impl From<OutboxError> for WriteError {
    fn from(error: OutboxError) -> Self {
        match error {
            OutboxError::Database(sql) => Self::Store(StoreError::Database(sql)),
            other => Self::Outbox(other),
        }
    }
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl Database {
    /// Runs a transaction that writes rows and their jobs (`write` begins it, calls
    /// `Outbox::enqueue` and commits) in a task of its own (see [`Database::in_task`]),
    /// waiting at most this database's bound. Past the bound the outcome is unknown: the
    /// transaction may still commit.
    pub async fn write_with_jobs<T: Send + 'static>(
        &self,
        what: &'static str,
        write: impl Future<Output = Result<T, WriteError>> + Send + 'static,
    ) -> Result<T, WriteError> {
        self.spawned(what, write).await
    }
}
