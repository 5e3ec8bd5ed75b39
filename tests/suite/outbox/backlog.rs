//! While jobs wait in the outbox (the broker away, the relay not draining): the status
//! pages show them `queued`, and once the outbox holds its limit new work gets a 503 with
//! `Retry-After` instead of the table growing without bound.

use photos::{JobState, UPLOAD_KINDS};
use rabbitmq_jobs::outbox::OutboxSettings;

use crate::app::{Options, spawn_app};
use crate::orders::shop::{GOOD_CARD, order_body};
use crate::photos::fixtures::{jpeg, photo};

#[tokio::test]
async fn jobs_waiting_in_the_outbox_show_as_queued_and_a_full_outbox_refuses_work_with_retry_after()
{
    let app = spawn_app(
        "outbox-full",
        Options {
            // Two uploads' worth; nothing drains it.
            outbox: OutboxSettings {
                max_unsent: 6,
                ..OutboxSettings::default()
            },
            relay: false,
            ..Options::default()
        },
    )
    .await;
    let first = app.accepted_upload("ines", jpeg(&photo(120, 90, 1))).await;
    app.accepted_upload("ines", jpeg(&photo(120, 90, 2))).await;
    let status = app.image(first).await;
    for kind in UPLOAD_KINDS {
        assert_eq!(status.jobs[kind].state, JobState::Queued, "{status:#?}");
    }

    let refused = app
        .upload_form("ines", jpeg(&photo(120, 90, 3)), "me.jpg")
        .await;
    assert_eq!(refused.status(), 503);
    let retry_after = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(retry_after, "30");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("try again later"),
        "{body}"
    );
    // Nothing of the refused upload is kept: the user still has exactly two images.
    let images: i64 = sqlx::query_scalar("SELECT count(*) FROM images WHERE user_id = 'ines'")
        .fetch_one(
            &sqlx::PgPool::connect(&app.database.admin_url)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(images, 2);

    let order = app
        .post_order(&order_body(&[("MUG-01", 1)], GOOD_CARD))
        .await;
    assert_eq!(order.status(), 503);
    assert!(order.headers().contains_key("retry-after"));
}
