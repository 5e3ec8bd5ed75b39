//! Placing an order, the store's one synchronous step: check the card and the items,
//! record the order and queue its jobs. The web layer reads the request and maps the
//! outcome to HTTP; an order's list of jobs is here and nowhere else.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dbkit::{StoreError, WriteError};
use rabbitmq_jobs::outbox::{Outbox, OutboxError};
use serde::Deserialize;
use uuid::Uuid;

use crate::database::{NewOrder, OrderStore, Placement};
use crate::{Card, CardError, InventoryJob, ORDER_KINDS, OrderConfirmationJob, check_card};

/// Most lines an order may have.
pub const MAX_LINES: usize = 50;
/// Most of one product an order may take.
pub const MAX_QUANTITY: u32 = 1000;

/// `POST /orders`, as the client sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderRequest {
    /// Where the confirmation goes.
    pub email: String,
    /// What to buy.
    pub items: Vec<ItemRequest>,
    /// How to pay.
    pub card: Card,
}

/// One line of an order request.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemRequest {
    /// The product.
    pub sku: String,
    /// How many, 1 to [`MAX_QUANTITY`].
    pub quantity: u32,
}

/// A placed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacedOrder {
    /// Its id, for its status URL.
    pub order_id: Uuid,
    /// What it costs, in cents.
    pub total_cents: i64,
}

/// Why an order was not placed: the client's input (say so), the card (declined), or ours
/// (a dependency is down: try again).
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The request is not an order we take (no items, a bad quantity or address).
    #[error("{0}")]
    Invalid(String),
    /// The card was refused: malformed, expired or declined.
    #[error(transparent)]
    Card(#[from] CardError),
    /// These SKUs are not products.
    #[error("no such products: {}", .0.join(", "))]
    UnknownProducts(Vec<String>),
    /// It could not be recorded.
    #[error("recording the order failed: {0}")]
    Store(StoreError),
    /// Its jobs could not be queued (nothing was recorded): the outbox is full (the broker
    /// has been away long), or a job cannot be sent as it is.
    #[error("queueing the order's jobs failed: {0}")]
    Queue(OutboxError),
}

/// Everything placing an order uses.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub store: OrderStore,
    pub outbox: Outbox,
}

impl Checkout {
    /// Checks the card (as of `today`) and the items, and records the order with its jobs
    /// in one transaction (the outbox's relay publishes them), whether or not the broker is
    /// reachable; never waits for a handler. A refused card records and queues nothing.
    pub async fn place(
        &self,
        request: &OrderRequest,
        today: NaiveDate,
    ) -> Result<PlacedOrder, OrderError> {
        let items = order_lines(request)?;
        mail::mailbox(&request.email)
            .map_err(|e| OrderError::Invalid(format!("`email` is not an address: {e}")))?;
        let card = check_card(&request.card, today)?;
        let order_id = Uuid::new_v4();
        let order = NewOrder {
            order_id,
            email: &request.email,
            card_last4: &card.last4,
            items: &items,
            kinds: &ORDER_KINDS,
        };
        let jobs = [
            self.outbox.encode(&InventoryJob { order_id }),
            self.outbox.encode(&OrderConfirmationJob { order_id }),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(OrderError::Queue)?;
        let total_cents = match self.store.record_order(&order, &self.outbox, jobs).await {
            Ok(Placement::Recorded { total_cents }) => total_cents,
            Ok(Placement::UnknownProducts(skus)) => return Err(OrderError::UnknownProducts(skus)),
            Err(WriteError::Store(error)) => return Err(OrderError::Store(error)),
            Err(WriteError::Outbox(error)) => return Err(OrderError::Queue(error)),
        };
        tracing::info!(%order_id, total_cents, lines = items.len(), "order placed");
        Ok(PlacedOrder {
            order_id,
            total_cents,
        })
    }
}

/// The request's lines, each SKU once (repeated SKUs are added up), checked for size.
fn order_lines(request: &OrderRequest) -> Result<Vec<(String, u32)>, OrderError> {
    if request.items.is_empty() {
        return Err(OrderError::Invalid(
            "an order needs at least one item".into(),
        ));
    }
    let mut lines: BTreeMap<&str, u32> = BTreeMap::new();
    for item in &request.items {
        if item.sku.is_empty() || item.sku.len() > 64 {
            return Err(OrderError::Invalid("a `sku` is 1 to 64 characters".into()));
        }
        let quantity = lines.entry(&item.sku).or_default();
        *quantity = quantity.saturating_add(item.quantity);
        if item.quantity == 0 || *quantity > MAX_QUANTITY {
            return Err(OrderError::Invalid(format!(
                "the quantity of `{}` must be 1 to {MAX_QUANTITY}",
                item.sku
            )));
        }
    }
    if lines.len() > MAX_LINES {
        return Err(OrderError::Invalid(format!(
            "an order has at most {MAX_LINES} products"
        )));
    }
    Ok(lines
        .into_iter()
        .map(|(sku, quantity)| (sku.to_owned(), quantity))
        .collect())
}
