//! The store's data in PostgreSQL: products and their stock, orders, each order job's state
//! and one-time effects. Its tables come with this domain's [`schema`], set up by
//! `producer db-setup`; every call is bounded (see [`dbkit::Database`]).

mod fulfilment;
mod placing;
mod schema;

use std::future::Future;

use dbkit::{Database, StoreError};

use crate::status::OrderLine;

pub use self::fulfilment::{OrderFacts, StockOutcome};
pub use self::placing::{NewOrder, Placement};
pub use self::schema::schema;

/// Access to the store's tables.
#[derive(Debug, Clone)]
pub struct OrderStore {
    /// The shared pool; every call bounded by its timeout.
    db: Database,
}

impl OrderStore {
    /// The store's tables of `database` (whose schema was checked when it connected).
    #[must_use]
    pub fn new(database: &Database) -> Self {
        Self {
            db: database.clone(),
        }
    }

    /// Per kind, the order jobs waiting for their next attempt.
    pub async fn jobs_retrying(&self) -> Result<Vec<(String, i64)>, StoreError> {
        dbkit::jobs_retrying(&self.db, "order_jobs").await
    }

    /// Runs `operation` within this store's bound.
    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        self.db.bounded(what, operation).await
    }

    /// The order's lines, by SKU (unbounded: for a caller's bounded operation).
    async fn items(&self, order_id: uuid::Uuid) -> Result<Vec<OrderLine>, sqlx::Error> {
        sqlx::query_as::<_, OrderLine>(
            "SELECT sku, quantity, price_cents FROM order_items WHERE order_id = $1 ORDER BY sku",
        )
        .bind(order_id)
        .fetch_all(self.db.pool())
        .await
    }
}
