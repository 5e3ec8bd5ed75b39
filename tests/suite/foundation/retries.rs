//! Failures: retried with growing waits, dead-lettered when permanent or out of attempts,
//! and a panic or a timeout is just a retryable failure.

use std::time::Duration;

use rabbitmq_jobs::{Job, JobError, KindSetting, RetryPolicy, dead_letter_queue, work_queue};
use serde_json::json;

use crate::helpers::{Echo, Recorder, echo_registry, spawn_app};

fn policy(max_attempts: u32, base: Duration) -> Vec<KindSetting<RetryPolicy>> {
    vec![KindSetting {
        kind: Echo::KIND.to_owned(),
        value: RetryPolicy::new(max_attempts, base, Duration::from_secs(10)),
    }]
}

#[tokio::test]
async fn a_job_that_fails_twice_succeeds_on_its_third_run_after_growing_waits() {
    let app = spawn_app("retry-twice").await;
    let recorder = Recorder::default();
    let registry = echo_registry(&recorder, 0, |_, ctx| async move {
        if ctx.attempt < 3 {
            Err(JobError::retry("not yet"))
        } else {
            Ok(())
        }
    });
    let mut settings = app.worker_settings("w");
    settings.retry_policies = policy(5, Duration::from_millis(500));
    let _worker = app.start_worker_with(registry, settings);

    app.publisher.publish(&Echo { n: 1 }).await.unwrap();

    let calls = recorder.wait_for_calls(3).await;
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    let attempts: Vec<u32> = recorder.calls().iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let first_wait = calls[1].at - calls[0].at;
    let second_wait = calls[2].at - calls[1].at;
    // 500 ms base, halved by jitter at worst, rounded down to the 200 ms tier; then 500 ms.
    assert!(
        first_wait >= Duration::from_millis(200),
        "first wait {first_wait:?}"
    );
    assert!(
        second_wait > first_wait,
        "waits did not grow: {first_wait:?} then {second_wait:?}"
    );
    let (_connection, channel) = app.raw_channel().await;
    assert_eq!(app.ready(&channel, &dead_letter_queue(Echo::KIND)).await, 0);
}

#[tokio::test]
async fn a_job_that_always_fails_is_dead_lettered_after_its_last_attempt() {
    let app = spawn_app("retry-exhausted").await;
    let recorder = Recorder::default();
    let registry = echo_registry(&recorder, 0, |_, _| async {
        Err(JobError::retry("smtp down"))
    });
    let mut settings = app.worker_settings("w");
    settings.retry_policies = policy(3, Duration::from_millis(100));
    let _worker = app.start_worker_with(registry, settings);
    let (_connection, channel) = app.raw_channel().await;
    let body = serde_json::to_vec(&json!({
        "id": uuid::Uuid::new_v4(), "kind": "echo", "version": 1,
        "created_at": "2026-11-25T10:00:00Z", "payload": {"n": 3}
    }))
    .unwrap();

    app.publish_raw(&channel, Echo::KIND, &body).await;

    let letters = app.dead_letters(Echo::KIND, 1).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body, body, "the dead letter's body changed");
    assert_eq!(letters[0].attempts(), Some(3));
    assert!(
        letters[0].error().contains("smtp down"),
        "x-job-error: {}",
        letters[0].error()
    );
    assert_eq!(recorder.calls().len(), 3);
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_at_once() {
    let app = spawn_app("permanent").await;
    let recorder = Recorder::default();
    let registry = echo_registry(&recorder, 0, |_, _| async {
        Err(JobError::permanent("image is not a picture"))
    });
    let _worker = app.start_worker(registry);

    let id = app.publisher.publish(&Echo { n: 9 }).await.unwrap();

    let letters = app.dead_letters(Echo::KIND, 1).await;
    assert_eq!(letters[0].attempts(), Some(1));
    assert_eq!(letters[0].error(), "image is not a picture");
    assert_eq!(
        letters[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string()),
        Some(id.to_string())
    );
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    assert_eq!(recorder.calls().len(), 1);
}

#[tokio::test]
async fn a_panicking_handler_is_retried_and_its_worker_lives_on() {
    let app = spawn_app("panic").await;
    let recorder = Recorder::default();
    let registry = echo_registry(&recorder, 0, |job, ctx| async move {
        if job.n == 0 && ctx.attempt == 1 {
            panic!("handler bug on job 0");
        }
        Ok(())
    });
    let _worker = app.start_worker(registry);

    app.publisher.publish(&Echo { n: 0 }).await.unwrap();
    recorder.wait_for_calls(2).await;
    app.publisher.publish(&Echo { n: 1 }).await.unwrap();

    let calls = recorder.wait_for_calls(3).await;
    let summary: Vec<(u64, u32)> = calls.iter().map(|c| (c.n, c.attempt)).collect();
    assert_eq!(summary, [(0, 1), (0, 2), (1, 1)]);
}

#[tokio::test]
async fn a_run_over_its_kinds_timeout_is_retried() {
    let app = spawn_app("timeout").await;
    let recorder = Recorder::default();
    let registry = echo_registry(&recorder, 0, |_, ctx| async move {
        if ctx.attempt == 1 {
            std::future::pending::<()>().await;
        }
        Ok(())
    });
    let mut settings = app.worker_settings("w");
    settings.job_timeouts = vec![KindSetting {
        kind: Echo::KIND.to_owned(),
        value: rabbitmq_jobs::HumanDuration(Duration::from_millis(300)),
    }];
    let _worker = app.start_worker_with(registry, settings);

    app.publisher.publish(&Echo { n: 5 }).await.unwrap();

    let calls = recorder.wait_for_calls(2).await;
    assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2]);
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}
