//! The online store's domain: an order's card is checked while the customer waits
//! ([`Checkout::place`]); taking stock, the confirmation mail and the warehouse notice are
//! jobs ([`registry`]), which a worker merges with other domains'.
//!
//! The job machinery ([`rabbitmq_jobs`]) knows nothing of orders; this crate implements
//! [`Job`](rabbitmq_jobs::Job) for its payloads and a
//! [`JobObserver`](rabbitmq_jobs::JobObserver) to show their progress.

mod card;
mod checkout;
mod database;
mod jobs;
mod recorder;
mod settings;
mod status;
mod warehouse;
mod work;

pub use self::card::{
    ApprovedCard, Card, CardError, DECLINED_CARD, INSUFFICIENT_FUNDS_CARD, check_card,
};
pub use self::checkout::{
    Checkout, ItemRequest, MAX_LINES, MAX_QUANTITY, OrderError, OrderRequest, PlacedOrder,
};
pub use self::database::{NewOrder, OrderFacts, OrderStore, Placement, StockOutcome, schema};
pub use self::jobs::{InventoryJob, ORDER_KINDS, OrderConfirmationJob, WarehouseJob, catalog};
pub use self::recorder::OrderRecorder;
pub use self::settings::WarehouseSettings;
pub use self::status::{OrderLine, OrderState, OrderStatus, Product, order_state};
pub use self::warehouse::{Warehouse, WarehouseError};
pub use self::work::{Fulfilment, registry};
pub use dbkit::{JobState, JobStatus};
