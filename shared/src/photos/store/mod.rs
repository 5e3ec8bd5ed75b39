//! The photo app's data in PostgreSQL: users, images and each job's state, shared by the
//! producer and every worker. Migrations run at start (concurrent starts are serialised by
//! sqlx's advisory lock).

mod pipeline;
mod uploads;

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use self::pipeline::{Claim, ImageFacts, JobRecord};
pub use self::uploads::NewUpload;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The query or the connection failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// Access to the photo app's tables.
#[derive(Debug, Clone)]
pub struct PhotoStore {
    pool: PgPool,
}

impl PhotoStore {
    /// Connects to `url` and applies pending migrations.
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // A claim holds a row lock across a broker publish (30 s at most). If its worker
        // vanishes without the server noticing (a network cut), the server ends the
        // transaction after this long instead of keeping the lock until TCP keepalive.
        let options = PgConnectOptions::from_str(url)?
            .options([("idle_in_transaction_session_timeout", "120s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
