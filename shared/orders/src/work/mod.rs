//! The order handlers and what they share.
//!
//! Every handler is idempotent (delivery is at least once): the stock is taken once per
//! order (a mark on the order, in the same transaction), the mail goes through a
//! `sending`/`sent` record and keeps one Message-ID, and the warehouse de-duplicates by the
//! order's idempotency key.

mod confirmation;
mod inventory;
mod notice;

use std::sync::Arc;

use mail::Mailer;
use mail::lettre::message::Mailbox;
use rabbitmq_jobs::{JobError, Publisher, Registry, ResultExt};
use uuid::Uuid;

use crate::database::{OrderFacts, OrderStore};
use crate::{InventoryJob, OrderConfirmationJob, OrderRecorder, Warehouse, WarehouseJob};

/// Everything the order handlers use.
#[derive(Debug)]
pub struct Fulfilment {
    pub store: OrderStore,
    /// Publishes `notify_warehouse` once the stock is taken.
    pub publisher: Publisher,
    pub mailer: Mailer,
    pub mail_from: Mailbox,
    /// Base of the links in mail, the web app's public address.
    pub public_base_url: String,
    pub warehouse: Warehouse,
}

impl Fulfilment {
    /// The order a job is about; one that was never recorded is a bad job.
    async fn order(&self, order_id: Uuid) -> Result<OrderFacts, JobError> {
        self.store
            .order_facts(order_id)
            .await
            .or_retry("reading the order")?
            .ok_or_else(|| JobError::permanent(format!("order {order_id} does not exist")))
    }
}

/// Every order kind with its handler, and the status recorder.
#[must_use]
pub fn registry(fulfilment: Arc<Fulfilment>) -> Registry {
    let recorder = OrderRecorder::new(fulfilment.store.clone());
    let (inventory, confirmation, notice) =
        (Arc::clone(&fulfilment), Arc::clone(&fulfilment), fulfilment);
    Registry::new()
        .register(move |job: InventoryJob, _| inventory::handle(Arc::clone(&inventory), job))
        .register(move |job: OrderConfirmationJob, _| {
            confirmation::handle(Arc::clone(&confirmation), job)
        })
        .register(move |job: WarehouseJob, _| notice::handle(Arc::clone(&notice), job))
        .observe(recorder)
}
