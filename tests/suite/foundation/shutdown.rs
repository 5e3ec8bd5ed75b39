//! Graceful shutdown: running jobs finish and are acked; what misses the deadline comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rabbitmq_jobs::{Job, work_queue};

use support::wait_until;

use crate::helpers::{Echo, PATIENCE, Recorder, echo_registry, spawn_app, succeed};

#[tokio::test]
async fn a_slow_job_in_flight_at_shutdown_completes_and_is_acked_not_redelivered() {
    let app = spawn_app("graceful").await;
    let recorder = Recorder::default();
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    let registry = echo_registry(&recorder, 0, move |_, _| {
        let flag = Arc::clone(&flag);
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        }
    });
    let worker = app.start_worker(registry);
    app.publisher.publish(&Echo { n: 1 }).await.unwrap();
    recorder.wait_for_calls(1).await;

    worker.stop().await.unwrap();

    assert!(
        finished.load(Ordering::SeqCst),
        "the worker stopped before its job finished"
    );
    let (_connection, channel) = app.raw_channel().await;
    assert_eq!(
        app.ready(&channel, &work_queue(Echo::KIND)).await,
        0,
        "the job was requeued"
    );
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    assert_eq!(recorder.calls().len(), 1);
}

#[tokio::test]
async fn a_job_still_running_at_the_shutdown_deadline_is_redelivered_not_lost() {
    let app = spawn_app("deadline").await;
    let recorder = Recorder::default();
    let stuck = echo_registry(&recorder, 0, |_, _| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    let mut settings = app.worker_settings("stuck");
    settings.shutdown_timeout = Duration::from_millis(300);
    let worker = app.start_worker_with(stuck, settings);
    let id = app.publisher.publish(&Echo { n: 1 }).await.unwrap();
    recorder.wait_for_calls(1).await;

    worker.stop().await.unwrap();
    let (_connection, channel) = app.raw_channel().await;
    // The broker requeues it once it has processed the stopped worker's channel close,
    // which can trail the close's reply under load.
    wait_until(PATIENCE, "the unfinished job to be back", || async {
        app.ready(&channel, &work_queue(Echo::KIND)).await == 1
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let _next = app.start_worker(echo_registry(&recorder, 1, succeed));

    let calls = recorder.wait_for_calls(2).await;
    assert_eq!((calls[1].id, calls[1].worker), (id, 1));
}
