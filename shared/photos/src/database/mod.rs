//! The photo app's data in PostgreSQL: users, images and each job's state, shared by the
//! producer and every worker. The schema is migrated by a one-shot step, [`set_up_database`]
//! (`producer db-setup`), which also gives each app a role with only the rights it uses;
//! the apps only check at start that the schema is up to date.
//!
//! Every call is bounded by one duration (`DATABASE_STATEMENT_TIMEOUT`) on both sides: the
//! client gives up on a call that takes longer (a server that hangs, a network cut), and
//! the server cancels a statement or a lock wait that does (so a lock held by another
//! transaction does not hold our connection either). Both end in [`StoreError::Timeout`].

mod pipeline;
mod setup;
mod uploads;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use self::pipeline::{Claim, ImageFacts, JobRecord};
pub use self::setup::{DatabaseRoles, Login, set_up_database};
pub use self::uploads::NewUpload;

/// PostgreSQL's codes for a statement cancelled by `statement_timeout` and a lock not
/// granted within `lock_timeout`.
const SERVER_TIMEOUT_CODES: [&str; 2] = ["57014", "55P03"];

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The query or the connection failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The schema lacks migrations this build needs: `db-setup` has not run since it was
    /// built.
    #[error(
        "the database schema lacks migrations {missing:?}: run `producer db-setup` \
         (compose's db-setup service) first"
    )]
    SchemaBehind {
        /// The versions not applied.
        missing: Vec<i64>,
    },
    /// An operation did not finish in time: the database is slow or unreachable, or another
    /// transaction holds a lock it needs.
    #[error("database: {what} took longer than {after:?} (DATABASE_STATEMENT_TIMEOUT)")]
    Timeout {
        /// What was cut short.
        what: &'static str,
        /// The bound it exceeded.
        after: Duration,
    },
}

impl StoreError {
    /// Whether trying again later may help: the database is unreachable, starting, shutting
    /// down, overloaded or slow, or its schema not set up yet. A wrong password, an unknown database or a broken
    /// migration is not: those need an operator.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        use sqlx::migrate::MigrateError;
        let sql = match self {
            // `db-setup` may not have run yet (the stack is starting, an upgrade is rolling).
            Self::Timeout { .. } | Self::SchemaBehind { .. } => return true,
            Self::Database(sql)
            | Self::Migration(
                MigrateError::Execute(sql) | MigrateError::ExecuteMigration(sql, _),
            ) => sql,
            Self::Migration(_) => return false,
        };
        match sql {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
            // SQLSTATE classes 08 (connection), 53 (resources, e.g. too many connections),
            // 57 (operator intervention: shutting down, starting up, cancelled) and the
            // lock and serialisation failures of class 40 and 55P03.
            sqlx::Error::Database(error) => error.code().is_some_and(|code| {
                ["08", "53", "57", "40"]
                    .iter()
                    .any(|class| code.starts_with(class))
                    || code == "55P03"
            }),
            _ => false,
        }
    }

    /// Whether the server or the pool gave up waiting (rather than the query failing).
    fn is_timeout(&self) -> bool {
        let sql = match self {
            Self::Timeout { .. } => return true,
            Self::Database(sql) | Self::Migration(sqlx::migrate::MigrateError::Execute(sql)) => sql,
            Self::Migration(_) | Self::SchemaBehind { .. } => return false,
        };
        match sql {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(error) => error
                .code()
                .is_some_and(|code| SERVER_TIMEOUT_CODES.contains(&code.as_ref())),
            _ => false,
        }
    }
}

/// Runs one store operation within `after`, whichever side notices it took too long.
async fn bounded<T, E: Into<StoreError>>(
    after: Duration,
    what: &'static str,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(after, operation).await {
        Err(_) => Err(StoreError::Timeout { what, after }),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            let error = error.into();
            Err(if error.is_timeout() {
                StoreError::Timeout { what, after }
            } else {
                error
            })
        }
    }
}

/// Access to the photo app's tables.
#[derive(Debug, Clone)]
pub struct PhotoStore {
    pool: PgPool,
    /// The bound of every call.
    timeout: Duration,
}

impl PhotoStore {
    /// Connects to `url` and checks that the schema is up to date (it never migrates: see
    /// [`set_up_database`]); every call of the store is bounded by `timeout`.
    #[tracing::instrument(skip_all)]
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        // The server takes milliseconds, and 0 would mean no bound at all.
        let millis = timeout.as_millis().max(1).to_string();
        // A claim holds a row lock across a broker publish (30 s at most). If its worker
        // vanishes without the server noticing (a network cut), the server ends the
        // transaction after 120 s instead of keeping the lock until TCP keepalive.
        let options = PgConnectOptions::from_str(url)?.options([
            ("idle_in_transaction_session_timeout", "120s"),
            ("statement_timeout", millis.as_str()),
            ("lock_timeout", millis.as_str()),
        ]);
        let connecting = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_with(options);
        let pool = bounded(timeout, "connecting", connecting).await?;
        bounded(timeout, "checking the schema", setup::check_schema(&pool)).await?;
        Ok(Self { pool, timeout })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        self.bounded("a ping", ping).await.map(drop)
    }

    /// Runs `operation` within this store's bound.
    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        bounded(self.timeout, what, operation).await
    }
}
