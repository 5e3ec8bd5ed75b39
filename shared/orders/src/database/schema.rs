//! The store domain's part of the database: its migrations (their history in a table of
//! their own, `_orders_migrations`, beside the photos'), and the rights each app needs on its
//! tables (`db-setup` grants exactly these).

use std::sync::LazyLock;

use dbkit::Schema;
use sqlx::migrate::Migrator;

/// The migrations in `shared/orders/migrations`, built in.
static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut migrator = sqlx::migrate!("./migrations");
    // A history table per domain: in sqlx's default one, each domain would see the other's
    // versions as unknown and refuse to migrate.
    migrator.dangerous_set_table_name("_orders_migrations");
    migrator
});

/// The producer reads products, records an order with its items and jobs (their outbox rows
/// in the same transaction), and reads an order's status. It deletes nothing.
const PRODUCER_RIGHTS: &[(&str, &str)] = &[
    ("products", "SELECT"),
    ("orders", "SELECT, INSERT"),
    ("order_items", "SELECT, INSERT"),
    ("order_jobs", "SELECT, INSERT"),
    ("order_mails", "SELECT"),
];

/// The workers take stock (the stock column only), mark an order's one-time steps, and
/// record job states and mails. No worker changes what was ordered or by whom.
const WORKER_RIGHTS: &[(&str, &str)] = &[
    ("products", "SELECT, UPDATE (stock)"),
    (
        "orders",
        "SELECT, UPDATE (stock_taken_at, attention_reason, warehouse_notified_at, updated_at)",
    ),
    ("order_items", "SELECT"),
    (
        "order_jobs",
        "SELECT, INSERT, UPDATE (state, attempt, error, updated_at)",
    ),
    ("order_mails", "SELECT, INSERT, UPDATE (state, sent_at)"),
];

/// The store domain's schema, for `db-setup` and for the apps' start-up check.
#[must_use]
pub fn schema() -> Schema {
    Schema {
        name: "orders",
        migrator: &MIGRATOR,
        producer: PRODUCER_RIGHTS,
        worker: WORKER_RIGHTS,
    }
}
