//! One connection pool per process, shared by every domain's store: every call is bounded
//! by one duration (`DATABASE_STATEMENT_TIMEOUT`) on both sides. The client gives up on a
//! call that takes longer (a server that hangs, a network cut), and the server cancels a
//! statement or a lock wait that does (so a lock held by another transaction does not hold
//! our connection either). Both end in [`StoreError::Timeout`].

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use rabbitmq_jobs::Backoff;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::setup::{Schema, check_schema};
use crate::{StoreError, bounded};

/// Where the apps' database is, and how they use it.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL of the app's database, as the app's own role (`db-setup` creates it);
    /// `--help` does not show the environment's value: it holds a password.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        hide_env_values = true
    )]
    pub url: String,
    /// Connections in the database pool.
    #[arg(id = "database_max_connections", long = "database-max-connections", env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: u32,
    /// Longest a database call may take (connecting, a statement, a lock wait, a commit);
    /// enforced by this process and, per statement, by the server.
    #[arg(id = "database_statement_timeout", long = "database-statement-timeout", env = "DATABASE_STATEMENT_TIMEOUT",
          default_value = "5s", value_parser = bound)]
    pub statement_timeout: Duration,
}

impl DatabaseSettings {
    /// Connects and checks that every schema is up to date. A database that is not
    /// reachable yet (the stack is starting, it restarts) or not set up yet is waited for,
    /// with backoff and a warning per failed attempt; a configuration error returns at once.
    pub async fn connect_when_up(&self, schemas: &[Schema]) -> Result<Database, StoreError> {
        when_database_up("DATABASE_URL", || {
            Database::connect(
                &self.url,
                self.max_connections,
                self.statement_timeout,
                schemas,
            )
        })
        .await
    }
}

/// A pool of connections, every call on it bounded.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    /// The bound of every call.
    timeout: Duration,
}

impl Database {
    /// Connects to `url` and checks that each of `schemas` is up to date (it never
    /// migrates: see [`set_up_database`](crate::set_up_database)); every call is bounded by
    /// `timeout`.
    #[tracing::instrument(skip_all)]
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
        schemas: &[Schema],
    ) -> Result<Self, StoreError> {
        // The server takes milliseconds, and 0 would mean no bound at all.
        let millis = timeout.as_millis().max(1).to_string();
        // A claim may hold a row lock across a broker publish (30 s at most). If its worker
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
        for schema in schemas {
            bounded(timeout, "checking the schema", check_schema(&pool, schema)).await?;
        }
        Ok(Self { pool, timeout })
    }

    /// The pool, for a store's statements (bound them with [`Database::bounded`]).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The bound of every call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `operation` within this database's bound.
    pub async fn bounded<T, E: Into<StoreError>>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError> {
        bounded(self.timeout, what, operation).await
    }

    /// Runs a transaction in a task of its own, within this database's bound. A caller
    /// cancelled while a transaction's `BEGIN` or `COMMIT` is in flight (its worker lost its
    /// broker connection, its client went away, a deadline passed) would otherwise hand the
    /// connection back to the pool inside the transaction, and the next caller's statements
    /// would run in it (seen in the chaos run). The task always finishes, committing or
    /// rolling back; past the bound the caller stops waiting for it. The server's
    /// `statement_timeout` bounds each of its statements.
    pub async fn in_task<T, E>(
        &self,
        what: &'static str,
        transaction: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: Into<StoreError> + Send + 'static,
    {
        let after = self.timeout;
        let converted = async move { transaction.await.map_err(Into::into) };
        self.spawned(what, converted)
            .await
            .map_err(|error: StoreError| {
                if error.is_timeout() {
                    StoreError::Timeout { what, after }
                } else {
                    error
                }
            })
    }

    /// Runs `work` in a task of its own (see [`Database::in_task`]) and waits at most this
    /// database's bound, keeping the work's own error type.
    pub(crate) async fn spawned<T, E>(
        &self,
        what: &'static str,
        work: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let after = self.timeout;
        match tokio::time::timeout(after, tokio::spawn(work)).await {
            Ok(Ok(done)) => done,
            Ok(Err(lost)) => {
                Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(lost))).into())
            }
            Err(_) => Err(StoreError::Timeout { what, after }.into()),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        self.bounded("a ping", ping).await.map(drop)
    }
}

/// Runs `attempt` until it succeeds or fails for a reason waiting will not fix: a database
/// that is not reachable yet (the stack is starting, it restarts) or whose schema is not set
/// up yet is waited for, with backoff and a warning naming `setting` per failed attempt.
pub async fn when_database_up<T, F, Fut>(setting: &str, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut attempts: u64 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        match attempt().await {
            Ok(value) => {
                if attempts > 1 {
                    tracing::info!(attempts, "PostgreSQL is up");
                }
                return Ok(value);
            }
            Err(error) if error.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    attempts,
                    %error,
                    retry_in = ?delay,
                    "PostgreSQL is not ready yet ({setting}); trying again"
                );
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A duration of at least a millisecond (the server's unit; zero would mean no bound).
fn bound(text: &str) -> Result<Duration, String> {
    let duration = rabbitmq_jobs::parse_duration(text)?;
    if duration < Duration::from_millis(1) {
        return Err(format!("`{text}` is shorter than a millisecond"));
    }
    Ok(duration)
}
