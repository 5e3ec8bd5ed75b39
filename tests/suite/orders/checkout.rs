//! Placing an order: the card and the items are checked while the client waits; a good
//! order is answered 202 once it is recorded with its jobs (the outbox's relay publishes
//! them), a bad one gets a 4xx that says why, and nothing of it is recorded or queued.

use orders::{DECLINED_CARD, INSUFFICIENT_FUNDS_CARD, OrderState};
use serde_json::json;

use support::wait_until;

use super::shop::{GOOD_CARD, order_body};
use crate::app::{Options, spawn_app};
use crate::helpers::PATIENCE;

#[tokio::test]
async fn an_order_is_accepted_with_no_worker_running_and_lists_its_jobs_queued() {
    let app = spawn_app("order-accepted", Options::default()).await;

    let order_id = app.placed_order(&[("MUG-01", 2), ("STICKERS", 3)]).await;

    let status = app.order(order_id).await;
    assert_eq!(status.state, OrderState::Accepted);
    assert_eq!(status.total_cents, 2 * 1200 + 3 * 400);
    let kinds: Vec<&str> = status.jobs.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "notify_warehouse",
            "send_order_confirmation",
            "update_inventory"
        ]
    );
    // The relay publishes them once the order's transaction has committed.
    for kind in ["update_inventory", "send_order_confirmation"] {
        let what = format!("the {kind} job to be published");
        wait_until(PATIENCE, &what, || async { app.ready(kind).await == 1 })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_refused_card_or_a_bad_order_gets_a_4xx_saying_why_and_nothing_is_recorded_or_queued() {
    let app = spawn_app("order-refused", Options::default()).await;
    let mut expired = order_body(&[("MUG-01", 1)], GOOD_CARD);
    expired["card"]["exp_year"] = json!(2020);
    let cases = [
        (order_body(&[("MUG-01", 1)], "4242"), 422, "12 to 19 digits"),
        (
            order_body(&[("MUG-01", 1)], "4242424242424241"),
            422,
            "check digit",
        ),
        (expired, 422, "expired"),
        (
            order_body(&[("MUG-01", 1)], DECLINED_CARD),
            402,
            "card declined",
        ),
        (
            order_body(&[("MUG-01", 1)], INSUFFICIENT_FUNDS_CARD),
            402,
            "insufficient funds",
        ),
        (
            order_body(&[("NO-SUCH", 1)], GOOD_CARD),
            422,
            "no such products: NO-SUCH",
        ),
        (order_body(&[], GOOD_CARD), 422, "at least one item"),
        (order_body(&[("MUG-01", 0)], GOOD_CARD), 422, "quantity"),
        (json!({ "email": "ada@example.com" }), 422, "items"),
        (
            json!({ "email": "not an address", "items": [{ "sku": "MUG-01", "quantity": 1 }],
                 "card": { "number": GOOD_CARD, "exp_month": 1, "exp_year": 2099 } }),
            422,
            "email",
        ),
    ];
    for (body, status, reason) in cases {
        let response = app.post_order(&body).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{body}: {message}");
    }

    let db = sqlx::PgPool::connect(&app.database.admin_url)
        .await
        .unwrap();
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "a refused order was recorded");
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM job_outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(queued, 0, "a refused order wrote jobs into the outbox");
    for kind in ["update_inventory", "send_order_confirmation"] {
        assert_eq!(app.ready(kind).await, 0, "a refused order queued {kind}");
    }
}
