//! The photo app's data in PostgreSQL: users, images and each job's state, shared by the
//! producer and every worker. The schema is migrated by a one-shot step (`producer
//! db-setup`, with this domain's [`schema`]), which also gives each app a role with only the
//! rights it uses; the apps only check at start that the schema is up to date. Every call
//! is bounded (see [`dbkit::Database`]).

mod pipeline;
mod schema;
mod uploads;

use std::future::Future;
use std::time::Duration;

use dbkit::{Database, StoreError, bounded};

pub use self::pipeline::{Claim, ImageFacts, JobRecord};
pub use self::schema::schema;
pub use self::uploads::NewUpload;

/// Access to the photo app's tables.
#[derive(Debug, Clone)]
pub struct PhotoStore {
    /// The shared pool; every call bounded by its timeout.
    db: Database,
}

impl PhotoStore {
    /// The photo tables of `database` (whose schema was checked when it connected).
    #[must_use]
    pub fn new(database: &Database) -> Self {
        Self {
            db: database.clone(),
        }
    }

    /// Connects to `url` on a pool of its own and checks that the photo schema is up to date
    /// (it never migrates); every call of the store is bounded by `timeout`.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let database = Database::connect(url, max_connections, timeout, &[schema()]).await?;
        Ok(Self::new(&database))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = sqlx::query("SELECT 1").execute(self.db.pool());
        self.bounded("a ping", ping).await.map(drop)
    }

    /// Per kind, the photo jobs waiting for their next attempt.
    pub async fn jobs_retrying(&self) -> Result<Vec<(String, i64)>, StoreError> {
        dbkit::jobs_retrying(&self.db, "image_jobs").await
    }

    /// Runs `operation` within this store's bound.
    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        self.db.bounded(what, operation).await
    }
}
