//! One error for every store: what failed, and whether trying again later may help.

use std::future::Future;
use std::time::Duration;

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
        "the database schema of {schema} lacks migrations {missing:?}: run `producer db-setup` \
         (compose's db-setup service) first"
    )]
    SchemaBehind {
        /// The domain whose migrations are missing.
        schema: &'static str,
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
    /// down, overloaded or slow, or its schema not set up yet. A wrong password, an unknown
    /// database or a broken migration is not: those need an operator.
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
    pub(crate) fn is_timeout(&self) -> bool {
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
pub async fn bounded<T, E: Into<StoreError>>(
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
