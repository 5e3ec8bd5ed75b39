//! Delivery is at least once: every job of an order delivered again (as after a lost ack)
//! takes no more stock, sends no second mail and no second warehouse notice.

use chrono::{DateTime, Utc};
use orders::{InventoryJob, OrderConfirmationJob, OrderState, WarehouseJob};
use sqlx::PgPool;
use uuid::Uuid;

use super::shop::{serve, shipments};
use crate::app::{Options, spawn_app};

#[tokio::test]
async fn every_job_of_an_order_delivered_again_takes_stock_once_mails_once_and_notifies_once() {
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
    let db = PgPool::connect(&app.database.admin_url).await.unwrap();

    // One kind at a time, so that each wait sees that kind's repeat handled.
    let since = Utc::now();
    app.publisher
        .publish(&WarehouseJob { order_id })
        .await
        .unwrap();
    wait_for_done_since(&db, order_id, "notify_warehouse", since).await;
    let since = Utc::now();
    app.publisher
        .publish(&InventoryJob { order_id })
        .await
        .unwrap();
    // The repeated inventory job queues the notice again, which is handled too.
    wait_for_done_since(&db, order_id, "update_inventory", since).await;
    wait_for_done_since(&db, order_id, "notify_warehouse", since).await;
    let since = Utc::now();
    let confirmation = OrderConfirmationJob { order_id };
    app.publisher.publish(&confirmation).await.unwrap();
    wait_for_done_since(&db, order_id, "send_order_confirmation", since).await;

    assert_eq!(app.stock("POSTER-A2").await, posters, "stock taken twice");
    assert_eq!(app.outbox().len(), 1, "a second mail");
    let shipped = shipments(&warehouse.url).await;
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert_eq!(shipped[0]["deliveries"], 1, "a second notice: {shipped:?}");
    assert_eq!(app.order(order_id).await.state, OrderState::Confirmed);
}

/// Waits until the order's `kind` job was recorded done after `since`.
async fn wait_for_done_since(db: &PgPool, order_id: Uuid, kind: &str, since: DateTime<Utc>) {
    let what = format!("the repeated {kind} job to be handled");
    support::wait_until(crate::helpers::PATIENCE, &what, || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM order_jobs
             WHERE order_id = $1 AND kind = $2 AND state = 'done' AND updated_at > $3)",
        )
        .bind(order_id)
        .bind(kind)
        .bind(since)
        .fetch_one(db)
        .await
        .unwrap()
    })
    .await
    .unwrap();
}
