//! The three jobs of an accepted order, and their wire kinds. Each names only its order:
//! the handler reads the rest from the database, so a job never carries stale data.

use std::time::Duration;

use rabbitmq_jobs::{Catalog, Job};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Take the order's items out of stock, all or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryJob {
    /// The order.
    pub order_id: Uuid,
}

impl Job for InventoryJob {
    const KIND: &'static str = "update_inventory";
    const VERSION: u32 = 1;
}

/// Mail the customer their order's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmationJob {
    /// The order.
    pub order_id: Uuid,
}

impl Job for OrderConfirmationJob {
    const KIND: &'static str = "send_order_confirmation";
    const VERSION: u32 = 1;
}

/// Tell the warehouse to ship the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseJob {
    /// The order.
    pub order_id: Uuid,
}

impl Job for WarehouseJob {
    const KIND: &'static str = "notify_warehouse";
    const VERSION: u32 = 1;
    /// One HTTP call, each attempt bounded by its own request timeout.
    const TIMEOUT: Duration = Duration::from_secs(60);
}

/// Every kind of the domain, each one of every order's jobs, listed with it from the start
/// (the warehouse is told once the stock is taken: the inventory job queues it).
pub const ORDER_KINDS: [&str; 3] = [
    InventoryJob::KIND,
    OrderConfirmationJob::KIND,
    WarehouseJob::KIND,
];

/// Every job type of this domain by kind: its topology, `WORKER_KINDS`, publishing from
/// JSON.
#[must_use]
pub fn catalog() -> Catalog {
    Catalog::new()
        .with::<InventoryJob>()
        .with::<OrderConfirmationJob>()
        .with::<WarehouseJob>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_lists_every_kind_of_the_domain() {
        let kinds: Vec<&str> = catalog().kinds().collect();
        assert_eq!(kinds.len(), ORDER_KINDS.len());
        assert!(ORDER_KINDS.iter().all(|kind| kinds.contains(kind)));
    }
}
