//! The online store's domain: an order's card is checked while the customer waits
//! ([`check_card`]); taking stock, the confirmation mail and the warehouse notice are jobs.
//!
//! So far the card check and the job types; the store, the handlers and the HTTP routes
//! follow.

mod card;
mod jobs;

pub use self::card::{
    ApprovedCard, Card, CardError, DECLINED_CARD, INSUFFICIENT_FUNDS_CARD, check_card,
};
pub use self::jobs::{InventoryJob, KINDS, OrderConfirmationJob, WarehouseJob, catalog};
