//! A retry or dead letter the worker cannot park (no route, an alarm, no confirm) is held
//! with backoff and shown as stalled: never a hot loop, never a silent loss, and never held
//! past the broker's `consumer_timeout`.

use std::time::Duration;

use rabbitmq_jobs::{
    HumanDuration, Job, JobError, JobEvent, JobObserver, JobOutcome, KindSetting, Observed,
    Topology, dead_letter_queue, work_queue,
};
use tokio::sync::mpsc;

use crate::helpers::{
    Echo, PATIENCE, Recorder, RunningWorker, TestApp, echo_registry, fast_publishing, spawn_app,
};

/// Passes on every stalled job's reason.
struct Stalls(mpsc::UnboundedSender<String>);

impl JobObserver for Stalls {
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a> {
        Box::pin(async move {
            if let JobOutcome::Stalled { reason } = event.outcome {
                let _ = self.0.send(reason.to_owned());
            }
            Ok(())
        })
    }
}

async fn next_stall(stalls: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, stalls.recv())
        .await
        .expect("no stalled event")
        .expect("the observer is gone")
}

async fn delete_queue(app: &TestApp, queue: &str) {
    app.vhost
        .management
        .delete_queue(&app.vhost.name, queue)
        .await
        .unwrap();
}

/// A worker whose publisher has one lane: once that lane has declared the topology, it does
/// not declare it again, so a queue the test deletes stays deleted.
fn start_worker(
    app: &TestApp,
    registry: rabbitmq_jobs::Registry,
    settings: rabbitmq_jobs::WorkerSettings,
) -> RunningWorker {
    let publishing = rabbitmq_jobs::PublisherSettings {
        channels: 1,
        ..fast_publishing()
    };
    let worker =
        rabbitmq_jobs::Worker::new(app.amqp.clone(), settings, publishing, registry).unwrap();
    RunningWorker::spawn(move || async move { worker })
}

/// Declares the echo topology again, as a worker or publisher would on reconnect.
async fn restore_topology(app: &TestApp) {
    let (connection, _channel) = app.raw_channel().await;
    let declared = Topology::new([Echo::KIND])
        .unwrap()
        .declare(&connection)
        .await
        .unwrap();
    assert!(declared.refused.is_empty());
}

#[tokio::test]
async fn a_retry_that_cannot_be_parked_is_held_with_backoff_and_returned_before_the_consumer_timeout()
 {
    let app = spawn_app("unparkable-retry").await;
    let recorder = Recorder::default();
    let (stalled, mut stalls) = mpsc::unbounded_channel();
    let registry = echo_registry(&recorder, 0, |_, ctx| async move {
        if ctx.attempt == 1 {
            Err(JobError::retry("not yet"))
        } else {
            Ok(())
        }
    })
    .observe(Stalls(stalled));
    let mut settings = app.worker_settings("w");
    // A short consumer timeout, so the worker must let go within the test's patience.
    settings.consumer_timeout = Duration::from_secs(40);
    settings.job_timeouts = vec![KindSetting {
        kind: Echo::KIND.to_owned(),
        value: HumanDuration(Duration::from_secs(2)),
    }];
    let _worker = start_worker(&app, registry, settings);
    // A first retry goes through, so the worker's publisher has declared what it needs.
    app.publisher.publish(&Echo { n: 0 }).await.unwrap();
    recorder.wait_for_calls(2).await;
    // Echo's retries wait in the 100 ms tier: without its queue, a retry has no route.
    delete_queue(&app, "jobs.wait.100").await;

    app.publisher.publish(&Echo { n: 1 }).await.unwrap();

    let reason = next_stall(&mut stalls).await;
    assert!(reason.contains("jobs.wait.100"), "{reason}");
    // The worker keeps the job and tries again with backoff, then returns it to its queue
    // before the broker's consumer_timeout would close its channel; it runs again from there.
    let calls = recorder.wait_for_calls(4).await;
    let held = calls[3].at - calls[2].at;
    assert!(
        held >= Duration::from_secs(5) && held < Duration::from_secs(40),
        "held {held:?}: no hot loop, and let go before the 40 s consumer timeout"
    );
    restore_topology(&app).await;
    let calls = recorder.wait_for_calls(5).await;
    assert_eq!(
        (calls[4].n, calls[4].attempt),
        (1, 2),
        "the parked retry ran as attempt 2"
    );
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_parked_waits_for_its_queue_and_arrives_with_its_reason() {
    let app = spawn_app("unparkable-dead-letter").await;
    let recorder = Recorder::default();
    let (stalled, mut stalls) = mpsc::unbounded_channel();
    let registry = echo_registry(&recorder, 0, |_, _| async {
        Err(JobError::permanent("not a picture"))
    })
    .observe(Stalls(stalled));
    let _worker = start_worker(&app, registry, app.worker_settings("w"));
    // A first dead letter goes through, so the worker's publisher has declared what it needs.
    app.publisher.publish(&Echo { n: 1 }).await.unwrap();
    app.dead_letters(Echo::KIND, 1).await;
    delete_queue(&app, &dead_letter_queue(Echo::KIND)).await;

    app.publisher.publish(&Echo { n: 2 }).await.unwrap();

    let reason = next_stall(&mut stalls).await;
    assert!(reason.contains("jobs.dlx"), "{reason}");
    restore_topology(&app).await;
    let letters = app.dead_letters(Echo::KIND, 1).await;
    assert_eq!(letters[0].error(), "not a picture");
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    assert_eq!(
        recorder.calls().len(),
        2,
        "the handler ran again: a hot loop"
    );
}
