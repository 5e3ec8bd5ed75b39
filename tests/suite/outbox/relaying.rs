//! The relay: woken by the table's notifications, shared by several relays without
//! blocking, and killed mid-batch without losing a job.

use std::process::Stdio;
use std::time::Duration;

use photos::EmailJob;
use rabbitmq_jobs::{Job, work_queue};
use support::{Broker, Postgres, wait_until};
use tokio::process::Command;

use super::{RunningRelay, assert_all_delivered, drain, enqueue, unsent};
use crate::helpers::{Echo, PATIENCE, messages_ready, spawn_app};

#[tokio::test]
async fn a_committed_job_wakes_an_idle_relay_at_once_instead_of_waiting_for_its_poll() {
    let app = spawn_app("outbox-notify").await;
    let database = Postgres::shared()
        .app_database("outbox_notify")
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&database.producer_url).await.unwrap();
    let settings = rabbitmq_jobs::outbox::OutboxSettings {
        // Only a notification can bring a job out within the test's patience.
        poll_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let relay = rabbitmq_jobs::outbox::Relay::new(
        pool.clone(),
        app.publisher.clone(),
        settings,
        Duration::from_secs(10),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    let (_connection, channel) = app.raw_channel().await;
    let queue = work_queue(Echo::KIND);
    // The first may be found by the relay's first look at the table; the second comes
    // while it idles.
    for expected in 1..=2 {
        enqueue(&pool, 1, |n| Echo { n: n as u64 }).await;
        wait_until(PATIENCE, "the relay to publish the job", || async {
            messages_ready(&channel, &queue).await == expected
        })
        .await
        .unwrap();
    }
    stop.send(()).unwrap();
    running.await.unwrap();
}

#[tokio::test]
async fn two_relays_sharing_one_table_publish_every_job_and_none_twice() {
    let app = spawn_app("outbox-two-relays").await;
    let database = Postgres::shared().app_database("outbox_two").await.unwrap();
    let pool = sqlx::PgPool::connect(&database.producer_url).await.unwrap();
    const JOBS: usize = 5_000;
    const BATCH: u32 = 100;
    let ids = enqueue(&pool, JOBS, |n| Echo { n: n as u64 }).await;

    let relays = [
        RunningRelay::start(&pool, &app.publisher, BATCH),
        RunningRelay::start(&pool, &app.publisher, BATCH),
    ];
    wait_until(PATIENCE, "the relays to empty the outbox", || async {
        unsent(&pool).await == 0
    })
    .await
    .unwrap();
    for relay in relays {
        relay.stop().await;
    }

    let (_connection, channel) = app.raw_channel().await;
    let deliveries = drain(&channel, &work_queue(Echo::KIND)).await;
    let extra = assert_all_delivered(&deliveries, &ids);
    tracing::info!(
        jobs = JOBS,
        extra,
        "two relays: deliveries beyond one per job"
    );
    // Each row is claimed by one relay (SKIP LOCKED) and marked in the claiming
    // transaction: with nobody crashing, nothing goes out twice.
    assert_eq!(extra, 0, "{extra} jobs were published twice");
}

#[tokio::test]
async fn a_producer_killed_while_it_relays_loses_no_job_and_repeats_at_most_a_batch_per_loop() {
    support::logs::capture();
    let vhost = Broker::shared().vhost("outbox-kill").await.unwrap();
    let database = Postgres::shared()
        .app_database("outbox_kill")
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&database.producer_url).await.unwrap();
    const JOBS: usize = 20_000;
    const BATCH: u32 = 500;
    let ids = enqueue(&pool, JOBS, |_| EmailJob {
        image_id: uuid::Uuid::new_v4(),
        user_id: "killed-relay".into(),
    })
    .await;
    // Declares the queue, so that it can be watched before the producer has started.
    let publisher = rabbitmq_jobs::Publisher::connect(
        &rabbitmq_jobs::AmqpSettings::from_url(&vhost.amqp_url).unwrap(),
        crate::helpers::fast_publishing(),
        rabbitmq_jobs::Topology::new([EmailJob::KIND]).unwrap(),
        "outbox-kill",
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("outbox-kill-{}", uuid::Uuid::new_v4().simple()));
    let port = support::free_port().unwrap();
    let mut producer = Command::new(env!("CARGO_BIN_EXE_photo-producer"))
        .arg("serve")
        .env("AMQP_URL", &vhost.amqp_url)
        .env("DATABASE_URL", &database.producer_url)
        .env("STORAGE_DIR", dir.join("storage"))
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("OUTBOX_BATCH", BATCH.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // SIGKILL as soon as the relay has published something, while it is under way.
    let (_connection, channel) = crate::helpers::open_channel(&vhost.amqp_url).await;
    let queue = work_queue(EmailJob::KIND);
    wait_until(
        PATIENCE,
        "the producer's relay to start publishing",
        || async { messages_ready(&channel, &queue).await > 0 },
    )
    .await
    .unwrap();
    producer.start_kill().unwrap();
    producer.wait().await.unwrap();
    let published_before = messages_ready(&channel, &queue).await;
    let left = unsent(&pool).await;
    assert!(
        left > 0,
        "the relay had sent everything before it was killed"
    );

    // Another producer's relay takes over what the killed one left.
    let relay = RunningRelay::start(&pool, &publisher, BATCH);
    wait_until(PATIENCE, "the second relay to empty the outbox", || async {
        unsent(&pool).await == 0
    })
    .await
    .unwrap();
    relay.stop().await;

    let deliveries = drain(&channel, &queue).await;
    let extra = assert_all_delivered(&deliveries, &ids);
    tracing::info!(published_before, left, extra, "relay killed mid-way");
    // What the killed relay published but had not marked is published again: at most the
    // batch each of its loops was in.
    let loops = u32::from(rabbitmq_jobs::outbox::OutboxSettings::default().relays);
    assert!(
        extra <= BATCH * loops,
        "{extra} jobs published twice, over one batch of {BATCH} for each of {loops} loops"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_relay_that_cannot_reach_the_broker_says_every_few_seconds_how_many_jobs_wait_and_for_how_long()
 {
    let logs = support::logs::Logs::default();
    let _capturing = logs.capture();
    let database = Postgres::shared().app_database("outbox_lag").await.unwrap();
    let pool = sqlx::PgPool::connect(&database.producer_url).await.unwrap();
    // Nothing listens there: every batch fails, and the jobs wait.
    let nowhere = rabbitmq_jobs::AmqpSettings::from_url("amqp://127.0.0.1:1/%2f").unwrap();
    let publisher = rabbitmq_jobs::Publisher::new(
        &nowhere,
        rabbitmq_jobs::PublisherSettings {
            publish_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        rabbitmq_jobs::Topology::new([Echo::KIND]).unwrap(),
        "outbox-lag",
    )
    .unwrap();
    enqueue(&pool, 3, |n| Echo { n: n as u64 }).await;
    let relay = RunningRelay::start(&pool, &publisher, 100);
    wait_until(PATIENCE, "the relay to report the jobs waiting", || async {
        logs.lines_with("outbox not draining") >= 2
    })
    .await
    .unwrap();
    assert!(logs.lines_with("waiting=3") >= 2);
    assert_eq!(
        unsent(&pool).await,
        3,
        "a job left the outbox without a broker"
    );
    relay.stop().await;
}
