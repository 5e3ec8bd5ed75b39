//! An order's jobs end to end: stock taken atomically, one confirmation mail, one warehouse
//! notice; an order for more than is left waits for a person and takes nothing.

use orders::{JobState, OrderState};

use super::shop::{serve, shipments};
use crate::app::{Options, spawn_app};

#[tokio::test]
async fn an_order_ends_confirmed_with_its_stock_taken_one_mail_and_one_warehouse_notice() {
    let warehouse = serve(producer::warehouse_stub::router()).await;
    let options = Options {
        warehouse_url: warehouse.url.clone(),
        ..Options::default()
    };
    let app = spawn_app("order-flow", options).await;
    let (mugs, shirts) = (app.stock("MUG-01").await, app.stock("TEE-M").await);
    let _worker = app.start_worker();

    let order_id = app.placed_order(&[("MUG-01", 2), ("TEE-M", 1)]).await;

    let status = app.wait_for_order(order_id, OrderState::Confirmed).await;
    assert!(status.jobs.values().all(|job| job.state == JobState::Done));
    assert_eq!(app.stock("MUG-01").await, mugs - 2);
    assert_eq!(app.stock("TEE-M").await, shirts - 1);
    let mails = app.outbox();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains(&format!("order-{order_id}")),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("To: ada@example.com"), "{}", mails[0]);
    let shipped = shipments(&warehouse.url).await;
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert_eq!(shipped[0]["key"], format!("order-{order_id}"));
    assert_eq!(shipped[0]["deliveries"], 1);
    assert_eq!(shipped[0]["notice"]["items"][0]["sku"], "MUG-01");
}

#[tokio::test]
async fn fifty_concurrent_orders_for_the_last_ten_leave_ten_confirmed_forty_needing_attention_and_no_negative_stock()
 {
    let warehouse = serve(producer::warehouse_stub::router()).await;
    let options = Options {
        warehouse_url: warehouse.url.clone(),
        ..Options::default()
    };
    let app = spawn_app("order-short", options).await;
    let db = sqlx::PgPool::connect(&app.database.admin_url)
        .await
        .unwrap();
    sqlx::query("UPDATE products SET stock = 10 WHERE sku = 'LAMP-01'")
        .execute(&db)
        .await
        .unwrap();
    let mugs = app.stock("MUG-01").await;
    let _worker = app.start_worker();

    // Each wants a lamp and a mug (plentiful): a short order must take neither.
    let placing = (0..50).map(|_| app.placed_order(&[("LAMP-01", 1), ("MUG-01", 1)]));
    let orders = futures_util::future::join_all(placing).await;
    let too_many = app.placed_order(&[("LAMP-01", 11)]).await;

    // The reason is written with the stock check, the job's failure just after.
    let short = app
        .wait_for_job(too_many, "update_inventory", JobState::Failed)
        .await;
    assert_eq!(short.state, OrderState::NeedsAttention);
    assert_eq!(
        short.attention_reason.as_deref(),
        Some("out of stock: LAMP-01")
    );
    assert_eq!(short.jobs["update_inventory"].attempt, 1, "retried");
    let mut confirmed = 0;
    for order_id in orders {
        let status = wait_settled(&app, order_id).await;
        confirmed += usize::from(status.state == OrderState::Confirmed);
    }
    assert_eq!(
        confirmed, 10,
        "the last ten lamps went to exactly ten orders"
    );
    assert_eq!(app.stock("LAMP-01").await, 0);
    assert_eq!(
        app.stock("MUG-01").await,
        mugs - 10,
        "a short order took a mug"
    );
    assert_eq!(shipments(&warehouse.url).await.len(), 10);
}

/// Waits until the order is confirmed or needs attention.
async fn wait_settled(app: &crate::app::App, order_id: uuid::Uuid) -> orders::OrderStatus {
    support::wait_until(crate::helpers::PATIENCE, "the order to settle", || async {
        matches!(
            app.order(order_id).await.state,
            OrderState::Confirmed | OrderState::NeedsAttention
        )
    })
    .await
    .unwrap();
    app.order(order_id).await
}
