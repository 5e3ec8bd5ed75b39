//! Every database call has a bound: a lock held elsewhere, a server that never answers and a
//! connection gone silent each end in `StoreError::Timeout` within
//! `DATABASE_STATEMENT_TIMEOUT`, instead of stalling the caller for ever.

use std::collections::BTreeMap;
use std::time::Duration;

use photos::{PhotoStore, StoreError};
use sqlx::Connection;
use support::Postgres;
use tokio::time::Instant;
use uuid::Uuid;

use super::records::recorded_upload;
use super::relay::{Mode, Relay, port_of};

/// The bound the tests set: short, so that a test waits little.
const BOUND: Duration = Duration::from_secs(1);
/// What a bounded call may take beyond its bound on a busy machine.
const SLACK: Duration = Duration::from_secs(4);

/// Runs `call`, which must fail with a timeout within the bound (plus slack).
async fn assert_times_out<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(BOUND + SLACK, call)
        .await
        .unwrap_or_else(|_| panic!("{what} was still waiting after {:?}", BOUND + SLACK));
    let elapsed = started.elapsed();
    match result {
        Err(error @ StoreError::Timeout { .. }) => {
            let message = error.to_string();
            assert!(message.contains("DATABASE_STATEMENT_TIMEOUT"), "{message}");
        }
        other => panic!("{what}: expected a timeout, got {other:?} after {elapsed:?}"),
    }
}

async fn store_at(url: &str) -> PhotoStore {
    PhotoStore::connect(url, 2, BOUND).await.unwrap()
}

/// Another session holding `image_id`'s row lock until the returned connection is dropped.
async fn lock_row(url: &str, image_id: Uuid) -> sqlx::PgConnection {
    let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM images WHERE id = $1 FOR UPDATE")
        .bind(image_id)
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}

#[tokio::test]
async fn a_row_lock_held_by_another_transaction_makes_a_claim_and_a_verdict_give_up_in_time() {
    support::logs::capture();
    let url = Postgres::shared()
        .app_database("bound-lock")
        .await
        .unwrap()
        .admin_url;
    let store = store_at(&url).await;
    // Thumbnails and an approval in: the claim's UPDATE matches the row, so it must lock it.
    let ready = recorded_upload(&store, "heidi").await;
    let keys = BTreeMap::from([("64".to_owned(), "k".to_owned())]);
    store.save_thumbnails(ready, &keys).await.unwrap();
    store.save_moderation(ready, true, None).await.unwrap();
    let undecided = recorded_upload(&store, "ivan").await;

    let holder = lock_row(&url, ready).await;
    assert_times_out("claim_profile_update", store.claim_profile_update(ready)).await;
    drop(holder);
    let holder = lock_row(&url, undecided).await;
    assert_times_out(
        "save_moderation",
        store.save_moderation(undecided, true, None),
    )
    .await;
    drop(holder);

    // Once the lock is gone the same store works again.
    let claim = store.claim_profile_update(ready).await.unwrap();
    claim.expect("the join is complete").commit().await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn a_server_that_accepts_connections_but_never_answers_fails_connect_in_time() {
    support::logs::capture();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts and keeps every connection, saying nothing.
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let url = format!("postgres://photos:photos@127.0.0.1:{port}/photos");

    assert_times_out("connect", PhotoStore::connect(&url, 2, BOUND)).await;
    holding.abort();
}

#[tokio::test]
async fn queries_on_a_connection_gone_silent_fail_in_time_and_work_again_once_it_is_back() {
    support::logs::capture();
    let url = Postgres::shared()
        .app_database("bound-silent")
        .await
        .unwrap()
        .admin_url;
    let relay = Relay::start(port_of(&url), Mode::Forward).await;
    let store = store_at(&relay.url_through(&url)).await;
    let image_id = recorded_upload(&store, "judy").await;

    relay.set(Mode::Freeze);
    assert_times_out("ping", store.ping()).await;
    assert_times_out("image_status", store.image_status(image_id)).await;
    assert_times_out("begin_email", store.begin_email(image_id, "judy@x")).await;

    relay.set(Mode::Forward);
    support::wait_until(
        crate::helpers::PATIENCE,
        "the store to answer again",
        || async { store.image_status(image_id).await.is_ok() },
    )
    .await
    .unwrap();
}
