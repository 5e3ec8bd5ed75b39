//! The workers' side: taking an order's stock once, its one-time effects (the mail, the
//! warehouse notice) and each job's state.

use dbkit::{JobState, StoreError};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::OrderStore;
use crate::status::OrderLine;

/// What a handler needs to know of an order.
#[derive(Debug, Clone)]
pub struct OrderFacts {
    /// The customer's address.
    pub email: String,
    /// Sum of the items.
    pub total_cents: i64,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// Whether the warehouse has acknowledged the order already.
    pub warehouse_notified: bool,
}

/// What taking an order's stock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockOutcome {
    /// Taken now.
    Taken,
    /// Taken by an earlier delivery of the job: nothing done now.
    AlreadyTaken,
    /// Not enough of these SKUs: nothing taken, the order needs attention.
    Short(Vec<String>),
    /// No such order.
    NoOrder,
}

#[derive(sqlx::FromRow)]
struct Claim {
    taken: bool,
    attention_reason: Option<String>,
}

impl OrderStore {
    /// The order `order_id`, if it exists.
    pub async fn order_facts(&self, order_id: Uuid) -> Result<Option<OrderFacts>, StoreError> {
        let reading = async {
            let order = sqlx::query_as::<_, (String, i64, bool)>(
                "SELECT email, total_cents, warehouse_notified_at IS NOT NULL FROM orders WHERE id = $1",
            )
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?;
            let Some((email, total_cents, warehouse_notified)) = order else {
                return Ok(None);
            };
            let items = self.items(order_id).await?;
            Ok(Some(OrderFacts {
                email,
                total_cents,
                items,
                warehouse_notified,
            }))
        };
        self.bounded("reading an order", reading).await
    }

    /// Takes every item of the order out of stock, all or none, at most once per order.
    /// One transaction: the order's row is locked first (two deliveries of its job take
    /// turns, and the second sees the first's mark), then its products in SKU order (two
    /// orders never wait on each other crosswise); a product short of stock takes nothing
    /// and records why the order needs attention. Stock never goes negative.
    pub async fn take_stock(&self, order_id: Uuid) -> Result<StockOutcome, StoreError> {
        let pool = self.db.pool().clone();
        self.db
            .in_task("taking stock", async move {
                let mut tx = pool.begin().await?;
                let outcome = take_stock_in(&mut tx, order_id).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(outcome)
            })
            .await
    }

    /// Records that the order's confirmation is about to be sent; true if it was sent
    /// already. One short statement: no transaction is held while the mail server answers.
    pub async fn begin_mail(&self, order_id: Uuid) -> Result<bool, StoreError> {
        // The no-op update makes an existing row come back too, with its state.
        let upsert = sqlx::query_scalar::<_, String>(
            "INSERT INTO order_mails (order_id, state) VALUES ($1, 'sending')
             ON CONFLICT (order_id) DO UPDATE SET state = order_mails.state
             RETURNING state",
        )
        .bind(order_id)
        .fetch_one(self.db.pool());
        let state = self.bounded("recording a mail's start", upsert).await?;
        Ok(state == "sent")
    }

    /// Records that the order's confirmation went out.
    pub async fn mail_sent(&self, order_id: Uuid) -> Result<(), StoreError> {
        let update = sqlx::query(
            "UPDATE order_mails SET state = 'sent', sent_at = now() WHERE order_id = $1",
        )
        .bind(order_id)
        .execute(self.db.pool());
        self.bounded("recording a sent mail", update)
            .await
            .map(drop)
    }

    /// Records that the warehouse acknowledged the order.
    pub async fn warehouse_notified(&self, order_id: Uuid) -> Result<(), StoreError> {
        let update = sqlx::query(
            "UPDATE orders SET warehouse_notified_at = coalesce(warehouse_notified_at, now()),
                               updated_at = now()
             WHERE id = $1",
        )
        .bind(order_id)
        .execute(self.db.pool());
        self.bounded("recording the warehouse notice", update)
            .await
            .map(drop)
    }

    /// Shows a job's new state. As for the photos: `done` is final, and `failed` gives way
    /// only to `done` (events of a duplicate delivery may arrive after the job finished).
    pub async fn record_job(
        &self,
        order_id: Uuid,
        kind: &str,
        state: JobState,
        attempt: u32,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let upsert = sqlx::query(
            "INSERT INTO order_jobs (order_id, kind, state, attempt, error)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (order_id, kind) DO UPDATE
             SET state = EXCLUDED.state, attempt = EXCLUDED.attempt, error = EXCLUDED.error,
                 updated_at = now()
             WHERE order_jobs.state NOT IN ('done', 'failed') OR EXCLUDED.state = 'done'",
        )
        .bind(order_id)
        .bind(kind)
        .bind(state)
        .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
        .bind(error)
        .execute(self.db.pool());
        self.bounded("recording a job's state", upsert)
            .await
            .map(drop)
    }
}

async fn take_stock_in(
    tx: &mut Transaction<'static, Postgres>,
    order_id: Uuid,
) -> Result<StockOutcome, sqlx::Error> {
    let claim = sqlx::query_as::<_, Claim>(
        "SELECT stock_taken_at IS NOT NULL AS taken, attention_reason
         FROM orders WHERE id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(claim) = claim else {
        return Ok(StockOutcome::NoOrder);
    };
    if claim.taken {
        return Ok(StockOutcome::AlreadyTaken);
    }
    let short: Vec<String> = sqlx::query_as::<_, (String, bool)>(
        "SELECT p.sku, p.stock >= i.quantity AS enough
         FROM order_items i JOIN products p ON p.sku = i.sku
         WHERE i.order_id = $1 ORDER BY p.sku FOR UPDATE OF p",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await
    .map(|rows| {
        rows.into_iter()
            .filter(|(_, enough)| !enough)
            .map(|(sku, _)| sku)
            .collect()
    })?;
    if !short.is_empty() {
        if claim.attention_reason.is_none() {
            sqlx::query(
                "UPDATE orders SET attention_reason = $2, updated_at = now() WHERE id = $1",
            )
            .bind(order_id)
            .bind(format!("out of stock: {}", short.join(", ")))
            .execute(&mut **tx)
            .await?;
        }
        return Ok(StockOutcome::Short(short));
    }
    sqlx::query(
        "UPDATE products p SET stock = p.stock - i.quantity
         FROM order_items i WHERE i.order_id = $1 AND p.sku = i.sku",
    )
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    // A replayed job of an order that was short, after restocking, settles it.
    sqlx::query(
        "UPDATE orders SET stock_taken_at = now(), attention_reason = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(StockOutcome::Taken)
}
