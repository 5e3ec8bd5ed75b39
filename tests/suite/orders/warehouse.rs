//! The warehouse over HTTP: a timeout or a 5xx is not the order's fault and is tried again
//! with backoff under the same idempotency key; a 4xx is the warehouse refusing the notice
//! for good, and fails the job at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use orders::{JobState, OrderState};

use super::shop::serve;
use crate::app::{Options, spawn_app};

/// A warehouse that answers the n-th notice with `script[n]`, the last entry from then on
/// (`None`: it never answers), and keeps each notice's idempotency key.
fn scripted(script: Vec<Option<StatusCode>>) -> (axum::Router, Arc<Mutex<Vec<String>>>) {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&keys);
    let router = axum::Router::new().route(
        "/shipments",
        post(move |headers: HeaderMap| {
            let (keys, script) = (Arc::clone(&seen), script.clone());
            async move {
                let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                let n = {
                    let mut keys = keys.lock().unwrap();
                    keys.push(key);
                    keys.len() - 1
                };
                match script[n.min(script.len() - 1)] {
                    Some(status) => status,
                    None => std::future::pending().await,
                }
            }
        }),
    );
    (router, keys)
}

#[tokio::test]
async fn a_warehouse_that_times_out_then_fails_is_tried_again_with_the_same_key_until_it_takes_the_notice()
 {
    let (router, keys) = scripted(vec![
        None,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        Some(StatusCode::CREATED),
    ]);
    let warehouse = serve(router).await;
    let options = Options {
        warehouse_url: warehouse.url.clone(),
        warehouse_timeout: Duration::from_secs(1),
        ..Options::default()
    };
    let app = spawn_app("warehouse-flaky", options).await;
    let _worker = app.start_worker();

    let order_id = app.placed_order(&[("STICKERS", 1)]).await;

    let status = app.wait_for_order(order_id, OrderState::Confirmed).await;
    let notice = &status.jobs["notify_warehouse"];
    assert_eq!((notice.state, notice.attempt), (JobState::Done, 3));
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys, vec![format!("order-{order_id}"); 3]);
}

#[tokio::test]
async fn a_warehouse_refusing_the_notice_with_a_4xx_fails_the_job_at_once() {
    let (router, keys) = scripted(vec![Some(StatusCode::UNPROCESSABLE_ENTITY)]);
    let warehouse = serve(router).await;
    let options = Options {
        warehouse_url: warehouse.url.clone(),
        ..Options::default()
    };
    let app = spawn_app("warehouse-refuses", options).await;
    let _worker = app.start_worker();

    let order_id = app.placed_order(&[("STICKERS", 1)]).await;

    let status = app.wait_for_order(order_id, OrderState::Failed).await;
    let notice = &status.jobs["notify_warehouse"];
    assert_eq!((notice.state, notice.attempt), (JobState::Failed, 1));
    let error = notice.error.as_deref().unwrap_or_default();
    assert!(error.contains("422"), "{error}");
    assert_eq!(
        keys.lock().unwrap().len(),
        1,
        "a refused notice was sent again"
    );
}
