//! The dashboard in headless Chromium: it shows the queues' counts change while jobs run,
//! lists a failed job with its reason, replays it with a click, and finds an order's jobs.

use std::sync::{Arc, Mutex};

use orders::JobState;
use support::browser::Browser;

use super::warehouse_refusing_until;
use crate::app::{ADMIN_TOKEN, Options, spawn_app};
use crate::orders::shop::serve;

/// The queue table's dead-letter count of the warehouse notices.
const DEAD_NOTICES: &str = r#"#queues tr[data-kind="notify_warehouse"] td.dead"#;

#[tokio::test]
async fn the_dashboard_shows_a_failed_job_and_replays_it_with_a_click() {
    let Some(browser) = Browser::start().await.unwrap() else {
        return;
    };
    let accept = Arc::new(Mutex::new(false));
    let warehouse = serve(warehouse_refusing_until(Arc::clone(&accept))).await;
    let options = Options {
        admin: true,
        warehouse_url: warehouse.url.clone(),
        ..Options::default()
    };
    let app = spawn_app("dashboard", options).await;
    let _worker = app.start_worker();

    browser.client.goto(&app.url("/admin")).await.unwrap();
    browser.type_into("#token", ADMIN_TOKEN).await.unwrap();
    browser.click("#sign-in-button").await.unwrap();
    browser
        .wait_for_text(DEAD_NOTICES, "the queue table", |text| text == "0")
        .await
        .unwrap();

    // The warehouse refuses the order's notice: the job is dead-lettered at once.
    let order_id = app.placed_order(&[("STICKERS", 1)]).await;
    app.wait_for_job(order_id, "notify_warehouse", JobState::Failed)
        .await;
    browser
        .wait_for_text(DEAD_NOTICES, "the dead letter counted", |text| text == "1")
        .await
        .unwrap();
    let reason = "#failures tbody tr td.reason";
    browser
        .wait_for_text(reason, "the failure listed", |text| text.contains("422"))
        .await
        .unwrap();
    browser
        .type_into("#search", &order_id.to_string())
        .await
        .unwrap();
    browser.click("#search-form button").await.unwrap();
    let notice_state = r#"#search-result tr[data-kind="notify_warehouse"] td.state"#;
    browser
        .wait_for_text(notice_state, "the order's jobs found", |text| {
            text == "failed"
        })
        .await
        .unwrap();
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-dashboard.png");
    browser.screenshot(&screenshot).await.unwrap();

    // The warehouse is fixed; one click sends the job back, and it is handled.
    *accept.lock().unwrap() = true;
    browser
        .click("#failures tbody tr button.replay")
        .await
        .unwrap();
    browser
        .wait_for_text("#status", "the replay reported", |text| {
            text == "replayed 1"
        })
        .await
        .unwrap();
    let status = app
        .wait_for_job(order_id, "notify_warehouse", JobState::Done)
        .await;
    assert_eq!(status.jobs["notify_warehouse"].attempt, 1);
    browser
        .wait_for_text(DEAD_NOTICES, "the dead letter gone", |text| text == "0")
        .await
        .unwrap();
    browser.close().await;
}
