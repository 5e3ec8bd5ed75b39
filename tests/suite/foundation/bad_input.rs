//! Bad messages go to the dead-letter queue at once, with the reason, and never loop.

use rabbitmq_jobs::{Job, work_queue};
use serde_json::json;

use crate::helpers::{Echo, Recorder, echo_registry, spawn_app, succeed};

fn envelope(kind: &str, version: u32, payload: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": uuid::Uuid::new_v4(), "kind": kind, "version": version,
        "created_at": "2026-11-25T10:00:00Z", "payload": payload
    }))
    .unwrap()
}

#[tokio::test]
async fn malformed_unknown_and_unsupported_jobs_are_dead_lettered_at_once_and_good_jobs_still_run()
{
    let app = spawn_app("bad-input").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    let (_connection, channel) = app.raw_channel().await;

    app.publish_raw(&channel, Echo::KIND, b"{not json").await;
    app.publish_raw(
        &channel,
        Echo::KIND,
        &envelope("resize", 1, json!({"n": 1})),
    )
    .await;
    app.publish_raw(
        &channel,
        Echo::KIND,
        &envelope("echo", 999, json!({"n": 1})),
    )
    .await;
    app.publish_raw(
        &channel,
        Echo::KIND,
        &envelope("echo", 1, json!({"n": "one"})),
    )
    .await;
    app.publisher.publish(&Echo { n: 77 }).await.unwrap();

    let calls = recorder.wait_for_calls(1).await;
    assert_eq!(calls[0].n, 77);
    let letters = app.dead_letters(Echo::KIND, 4).await;
    let mut reasons: Vec<String> = letters.iter().map(|l| l.error()).collect();
    reasons.sort();
    assert_eq!(letters.len(), 4, "{reasons:?}");
    let expected = [
        "malformed job",
        "payload does not fit",
        "unknown kind `resize`",
        "unsupported version 999",
    ];
    for (reason, expected) in reasons.iter().zip(expected) {
        assert!(
            reason.contains(expected),
            "`{reason}` should mention `{expected}`"
        );
    }
    assert!(
        letters.iter().all(|l| l.attempts() == Some(0)),
        "a bad job ran"
    );
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    assert_eq!(recorder.calls().len(), 1);
}

#[tokio::test]
async fn a_job_claiming_the_largest_attempt_count_still_runs() {
    let app = spawn_app("attempts-overflow").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    let (_connection, channel) = app.raw_channel().await;
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        rabbitmq_jobs::JOB_ATTEMPTS.into(),
        lapin::types::AMQPValue::LongUInt(u32::MAX),
    );
    let properties = lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    channel
        .basic_publish(
            rabbitmq_jobs::EXCHANGE.into(),
            Echo::KIND.into(),
            lapin::options::BasicPublishOptions::default(),
            &envelope("echo", 1, json!({"n": 4})),
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let calls = recorder.wait_for_calls(1).await;
    assert_eq!(calls[0].attempt, u32::MAX);
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_dead_lettered_unread() {
    let app = spawn_app("oversized-incoming").await;
    let recorder = Recorder::default();
    let publishing = rabbitmq_jobs::PublisherSettings {
        max_message_size: 10_000,
        ..crate::helpers::fast_publishing()
    };
    let worker = rabbitmq_jobs::Worker::new(
        app.amqp.clone(),
        app.worker_settings("small"),
        publishing,
        echo_registry(&recorder, 0, succeed),
    )
    .unwrap();
    let _worker = crate::helpers::RunningWorker::spawn(move || async move { worker });
    let (_connection, channel) = app.raw_channel().await;
    let padding = "x".repeat(20_000);
    let body = envelope("echo", 1, json!({"n": 1, "padding": padding}));

    app.publish_raw(&channel, Echo::KIND, &body).await;

    let letters = app.dead_letters(Echo::KIND, 1).await;
    assert!(
        letters[0].error().contains("over the size limit"),
        "{}",
        letters[0].error()
    );
    assert_eq!(letters[0].body, body);
    assert!(recorder.calls().is_empty());
}
