//! Delivery is at least once: every job of an order delivered again (as after a lost ack)
//! takes no more stock, sends no second mail and ships nothing twice.

use chrono::Utc;
use orders::{InventoryJob, OrderConfirmationJob, OrderState, WarehouseJob};
use sqlx::PgPool;
use uuid::Uuid;

use super::shop::{serve, shipments};
use crate::app::{Options, spawn_app};

#[tokio::test]
async fn every_job_of_an_order_delivered_again_takes_stock_once_mails_once_and_ships_once() {
    let warehouse = serve(producer::warehouse_stub::router()).await;
    let options = Options {
        warehouse_url: warehouse.url.clone(),
        ..Options::default()
    };
    let app = spawn_app("order-twice", options).await;
    let _worker = app.start_worker();
    let order_id = app.placed_order(&[("POSTER-A2", 3)]).await;
    app.wait_for_order(order_id, OrderState::Confirmed).await;
    let posters = app.stock("POSTER-A2").await;

    let published_at = Utc::now();
    app.publisher
        .publish(&InventoryJob { order_id })
        .await
        .unwrap();
    app.publisher
        .publish(&OrderConfirmationJob { order_id })
        .await
        .unwrap();
    app.publisher
        .publish(&WarehouseJob { order_id })
        .await
        .unwrap();

    let db = PgPool::connect(&app.database.admin_url).await.unwrap();
    wait_for_runs_since(&db, order_id, published_at).await;
    // The repeated inventory job queues a notice again: the warehouse heard three notices
    // under one key, and ships once.
    support::wait_until(crate::helpers::PATIENCE, "three notices", || async {
        shipments(&warehouse.url).await[0]["deliveries"] == 3
    })
    .await
    .unwrap();
    assert_eq!(shipments(&warehouse.url).await.len(), 1);
    assert_eq!(app.stock("POSTER-A2").await, posters, "stock taken twice");
    assert_eq!(app.outbox().len(), 1, "a second mail");
    assert_eq!(app.order(order_id).await.state, OrderState::Confirmed);
}

/// Waits until each of the order's three jobs was recorded done after `since`.
async fn wait_for_runs_since(db: &PgPool, order_id: Uuid, since: chrono::DateTime<Utc>) {
    support::wait_until(
        crate::helpers::PATIENCE,
        "the repeated jobs to be handled",
        || async {
            let done: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM order_jobs
             WHERE order_id = $1 AND state = 'done' AND updated_at > $2",
            )
            .bind(order_id)
            .bind(since)
            .fetch_one(db)
            .await
            .unwrap();
            done == 3
        },
    )
    .await
    .unwrap();
}
