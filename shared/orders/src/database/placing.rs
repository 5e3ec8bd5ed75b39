//! The producer's side: recording a placed order, and reading products and orders.

use chrono::{DateTime, Utc};
use dbkit::{JobRow, StoreError, WriteError, job_statuses};
use rabbitmq_jobs::EncodedJob;
use rabbitmq_jobs::outbox::Outbox;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use uuid::Uuid;

use super::OrderStore;
use crate::status::{OrderStatus, Product, order_state};

/// An order whose card was approved, about to be recorded.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    /// Its new id.
    pub order_id: Uuid,
    /// Where its confirmation goes.
    pub email: &'a str,
    /// The approved card's last four digits.
    pub card_last4: &'a str,
    /// `(sku, quantity)`, each SKU once.
    pub items: &'a [(String, u32)],
    /// The jobs it gets, recorded as queued.
    pub kinds: &'a [&'a str],
}

/// What recording an order came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Recorded, at this total.
    Recorded {
        /// Sum of quantity × the product's current price.
        total_cents: i64,
    },
    /// Nothing recorded: these SKUs are not products.
    UnknownProducts(Vec<String>),
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    total_cents: i64,
    attention_reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl OrderStore {
    /// Every product, by SKU.
    pub async fn products(&self) -> Result<Vec<Product>, StoreError> {
        let query = sqlx::query_as::<_, Product>(
            "SELECT sku, name, price_cents, stock FROM products ORDER BY sku",
        )
        .fetch_all(self.db.pool());
        self.bounded("reading products", query).await
    }

    /// Records the order, its items at the products' current prices and its jobs as
    /// queued (one statement), and writes the jobs into the outbox, in one transaction: the
    /// order exists with its jobs or not at all. An unknown SKU records nothing.
    pub async fn record_order(
        &self,
        order: &NewOrder<'_>,
        outbox: &Outbox,
        jobs: Vec<EncodedJob>,
    ) -> Result<Placement, WriteError> {
        let (skus, quantities): (Vec<String>, Vec<i32>) = order
            .items
            .iter()
            .map(|(sku, quantity)| (sku.clone(), i32::try_from(*quantity).unwrap_or(i32::MAX)))
            .unzip();
        let insert = insert_order(order, skus.clone(), quantities);
        let (pool, outbox) = (self.db.pool().clone(), outbox.clone());
        let writing = async move {
            let mut tx = pool.begin().await?;
            let Some(total_cents) = insert.fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            outbox.enqueue(&mut tx, &jobs).await?;
            tx.commit().await?;
            Ok(Some(total_cents))
        };
        if let Some(total_cents) = self
            .db
            .write_with_jobs("recording an order", writing)
            .await?
        {
            return Ok(Placement::Recorded { total_cents });
        }
        let known = sqlx::query_scalar::<_, String>("SELECT sku FROM products WHERE sku = ANY($1)")
            .bind(&skus)
            .fetch_all(self.db.pool());
        let known = self.bounded("reading products", known).await?;
        let unknown = skus
            .iter()
            .filter(|sku| !known.iter().any(|k| k == *sku))
            .map(|sku| (*sku).to_owned())
            .collect();
        Ok(Placement::UnknownProducts(unknown))
    }

    /// The order as `GET /orders/{id}` shows it.
    pub async fn order_status(&self, order_id: Uuid) -> Result<Option<OrderStatus>, StoreError> {
        let reading = async {
            let order = sqlx::query_as::<_, OrderRow>(
                "SELECT total_cents, attention_reason, created_at FROM orders WHERE id = $1",
            )
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?;
            let Some(order) = order else {
                return Ok(None);
            };
            let items = self.items(order_id).await?;
            let jobs = sqlx::query_as::<_, JobRow>(
                "SELECT kind, state, attempt, error FROM order_jobs WHERE order_id = $1",
            )
            .bind(order_id)
            .fetch_all(self.db.pool())
            .await?;
            Ok(Some((order, items, jobs)))
        };
        let Some((order, items, jobs)) = self.bounded("reading an order", reading).await? else {
            return Ok(None);
        };
        let jobs = job_statuses(jobs);
        Ok(Some(OrderStatus {
            order_id,
            state: order_state(order.attention_reason.as_deref(), &jobs),
            total_cents: order.total_cents,
            items,
            jobs,
            attention_reason: order.attention_reason,
            created_at: order.created_at,
        }))
    }
}

/// The order, its items at the products' current prices and its jobs as queued: one
/// statement, which inserts nothing (and returns no total) if a SKU is unknown. Its values
/// are bound as copies, so the statement can run in a task of its own.
fn insert_order(
    order: &NewOrder<'_>,
    skus: Vec<String>,
    quantities: Vec<i32>,
) -> QueryScalar<'static, Postgres, i64, PgArguments> {
    sqlx::query_scalar::<_, i64>(
        "WITH wanted AS (
                 SELECT w.sku, w.quantity, p.price_cents
                 FROM unnest($3::text[], $4::int[]) AS w (sku, quantity)
                 JOIN products p ON p.sku = w.sku
             ), new_order AS (
                 INSERT INTO orders (id, email, card_last4, total_cents)
                 SELECT $1, $2, $5, sum(quantity::bigint * price_cents) FROM wanted
                 HAVING count(*) = cardinality($3::text[])
                 RETURNING id, total_cents
             ), new_items AS (
                 INSERT INTO order_items (order_id, sku, quantity, price_cents)
                 SELECT new_order.id, sku, quantity, price_cents FROM wanted CROSS JOIN new_order
             ), new_jobs AS (
                 INSERT INTO order_jobs (order_id, kind)
                 SELECT new_order.id, kind FROM unnest($6::text[]) AS kind CROSS JOIN new_order
             )
             SELECT total_cents FROM new_order",
    )
    .bind(order.order_id)
    .bind(order.email.to_owned())
    .bind(skus)
    .bind(quantities)
    .bind(order.card_last4.to_owned())
    .bind(
        order
            .kinds
            .iter()
            .map(|k| (*k).to_owned())
            .collect::<Vec<String>>(),
    )
}
