//! The photo app's data in PostgreSQL: users, images and each job's state, shared by the
//! producer and every worker. Migrations run at start (concurrent starts are serialised by
//! sqlx's advisory lock).

mod pipeline;
mod uploads;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

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
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
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
