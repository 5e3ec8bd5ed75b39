//! A job is handled once and acked; a job from any language is handled; many workers share a queue.

use std::collections::{HashMap, HashSet};

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use rabbitmq_jobs::{Job, work_queue};
use serde_json::json;

use crate::helpers::{Echo, Recorder, echo_registry, publish_echoes, spawn_app, succeed};

#[tokio::test]
async fn a_job_is_handled_once_and_acked() {
    let app = spawn_app("handled-once").await;
    let recorder = Recorder::default();
    let worker = app.start_worker(echo_registry(&recorder, 0, succeed));

    let id = app.publisher.publish(&Echo { n: 42 }).await.unwrap();

    let calls = recorder.wait_for_calls(1).await;
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    worker.stop().await.unwrap();
    let calls_after_stop = recorder.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls_after_stop.len(),
        1,
        "handled more than once: {calls_after_stop:?}"
    );
    assert_eq!((calls[0].id, calls[0].n, calls[0].attempt), (id, 42, 1));
    let stats = app.queue(&work_queue(Echo::KIND)).await;
    assert_eq!(
        (stats.messages_ready, stats.messages_unacknowledged),
        (0, 0)
    );
}

#[tokio::test]
async fn a_job_published_by_the_wire_contract_alone_is_handled() {
    let app = spawn_app("wire-contract").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));

    // What a producer in another language does: no project code, only the README's contract.
    let (_connection, channel) = app.raw_channel().await;
    let id = uuid::Uuid::new_v4();
    let body = json!({
        "id": id,
        "kind": "echo",
        "version": 1,
        "created_at": "2026-11-25T10:00:00Z",
        "payload": {"n": 7},
    });
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(id.to_string().into())
        .with_type("echo".into());
    let confirm = channel
        .basic_publish(
            "jobs".into(),
            "echo".into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &serde_json::to_vec(&body).unwrap(),
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        confirm.is_ack() && confirm.take_message().is_none(),
        "not routed"
    );

    let calls = recorder.wait_for_calls(1).await;
    assert_eq!((calls[0].id.0, calls[0].n), (id, 7));
}

#[tokio::test]
async fn decoupled_jobs_published_with_no_worker_are_drained_once_by_three_workers() {
    let app = spawn_app("decoupling").await;
    let ids = publish_echoes(&app.publisher, 1_000).await;
    let (_connection, channel) = app.raw_channel().await;
    assert_eq!(
        app.ready(&channel, &work_queue(Echo::KIND)).await,
        1_000,
        "the backlog waits in the queue"
    );

    let recorder = Recorder::default();
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let mut settings = app.worker_settings(&format!("w{w}"));
            settings.concurrency = 10;
            let registry = echo_registry(&recorder, w, |_, _| async {
                // A little work, so one worker cannot drain the backlog before the others start.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                Ok(())
            });
            app.start_worker_with(registry, settings)
        })
        .collect();

    let calls = recorder.wait_for_distinct(1_000).await;
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    for worker in workers {
        worker.stop().await.unwrap();
    }
    let calls = recorder.calls().len().max(calls.len());
    let mut per_id: HashMap<_, usize> = HashMap::new();
    for call in recorder.calls() {
        *per_id.entry(call.id).or_default() += 1;
    }
    assert_eq!(calls, 1_000, "some job was handled twice");
    assert_eq!(
        per_id.keys().copied().collect::<HashSet<_>>(),
        ids.into_iter().collect()
    );
    let busy: HashSet<usize> = recorder.calls().iter().map(|c| c.worker).collect();
    assert_eq!(busy.len(), 3, "not every worker did work: {busy:?}");
}

#[tokio::test]
async fn a_worker_holds_no_more_jobs_of_a_kind_than_it_runs() {
    let app = spawn_app("held-equals-running").await;
    let recorder = Recorder::default();
    publish_echoes(&app.publisher, 10).await;
    let registry = echo_registry(&recorder, 0, |_, _| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    let mut settings = app.worker_settings("w");
    settings.concurrency = 3;
    let _worker = app.start_worker_with(registry, settings);

    // The kind's prefetch is its concurrency: nothing waits in the worker's buffer while the
    // broker's consumer_timeout runs, and the rest stays in the queue for other workers.
    recorder.wait_for_calls(3).await;
    support::wait_until(crate::helpers::PATIENCE, "3 held, 7 ready", || async {
        let stats = app.queue(&work_queue(Echo::KIND)).await;
        (stats.messages_unacknowledged, stats.messages_ready) == (3, 7)
    })
    .await
    .unwrap();
    assert_eq!(recorder.calls().len(), 3);
}
