//! Delayed jobs: they wait in the broker's wait queues, not in a process, run no earlier
//! than asked, and survive a broker restart.

use std::time::Duration;

use rabbitmq_jobs::{Job, dead_letter_queue, work_queue};
use support::Broker;
use tokio::time::Instant;

use crate::helpers::{Echo, Recorder, echo_registry, spawn_app, spawn_app_on, succeed};

#[tokio::test]
async fn a_delayed_job_does_not_run_before_its_time_and_then_runs_once() {
    let app = spawn_app("delayed").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    // 2.5 s is no tier: the job waits 2 s, comes back early, and waits 500 ms more.
    let delay = Duration::from_millis(2_500);

    let published = Instant::now();
    let delayed = app
        .publisher
        .publish_in(&Echo { n: 1 }, delay)
        .await
        .unwrap();
    let at_once = app.publisher.publish(&Echo { n: 2 }).await.unwrap();

    let calls = recorder.wait_for_calls(2).await;
    assert_eq!((calls[0].id, calls[1].id), (at_once, delayed), "{calls:?}");
    let waited = calls[1].at - published;
    assert!(
        waited >= delay,
        "ran after {waited:?}, before its {delay:?}"
    );
    // Each hop through a wait queue is not a run: it is still its first attempt.
    assert_eq!(calls[1].attempt, 1);
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    assert_eq!(
        recorder.calls().len(),
        2,
        "run twice: {:?}",
        recorder.calls()
    );
    let dead = app.queue(&dead_letter_queue(Echo::KIND)).await;
    assert_eq!(dead.messages_ready, 0);
}

#[tokio::test]
async fn a_delayed_job_survives_a_broker_restart_and_runs_after_its_time() {
    let broker = Broker::dedicated().await.unwrap();
    let app = spawn_app_on(&broker, "delayed-restart").await;
    let delay = Duration::from_secs(4);
    let published = Instant::now();
    let id = app
        .publisher
        .publish_in(&Echo { n: 7 }, delay)
        .await
        .unwrap();

    broker.rabbitmqctl(&["stop_app"]).await.unwrap();
    broker.rabbitmqctl(&["start_app"]).await.unwrap();
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));

    let calls = recorder.wait_for_calls(1).await;
    assert_eq!(calls[0].id, id);
    let waited = calls[0].at - published;
    assert!(
        waited >= delay,
        "ran after {waited:?}, before its {delay:?}"
    );
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}
