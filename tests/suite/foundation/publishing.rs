//! Publishing errors are the caller's to see: unroutable, oversized, blocked by an alarm; and
//! jobs published by kind name from JSON (a catalog) are typed jobs like any other.

use std::time::Duration;

use rabbitmq_jobs::{Catalog, Job, PublishError, Publisher, PublisherSettings, Topology};
use serde::{Deserialize, Serialize};
use support::Broker;

use crate::helpers::{Echo, Recorder, TestApp, echo_registry, spawn_app, spawn_app_on, succeed};

/// A kind nobody declared a queue for.
#[derive(Debug, Serialize, Deserialize)]
struct Orphan {
    text: String,
}

impl Job for Orphan {
    const KIND: &'static str = "orphan";
    const VERSION: u32 = 1;
}

#[tokio::test]
async fn an_unroutable_publish_is_an_error() {
    let app = spawn_app("unroutable").await;

    let result = app
        .publisher
        .publish(&Orphan {
            text: "lost?".into(),
        })
        .await;

    match result {
        Err(PublishError::Unroutable { routing_key, .. }) => assert_eq!(routing_key, "orphan"),
        other => panic!("expected Unroutable, got {other:?}"),
    }
    assert!(!result_is_retryable(
        &app.publisher
            .publish(&Orphan {
                text: String::new()
            })
            .await
    ));
}

fn result_is_retryable<T>(result: &Result<T, PublishError>) -> bool {
    result
        .as_ref()
        .err()
        .is_some_and(PublishError::is_retryable)
}

#[tokio::test]
async fn an_oversized_job_is_refused_before_it_reaches_the_broker() {
    let (_app, publisher) = publisher_with_max_size("oversized", 1_000).await;

    let result = publisher
        .publish(&Orphan {
            text: "x".repeat(2_000),
        })
        .await;

    match result {
        Err(PublishError::TooLarge {
            size, max: 1_000, ..
        }) => assert!(size > 2_000),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    publisher
        .publish(&Orphan {
            text: "small".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn jobs_published_by_kind_name_from_a_catalog_run_as_typed_jobs_each_with_its_own_id() {
    let app = spawn_app("by-kind").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    let catalog = Catalog::new().with::<Echo>();

    let ids = producer::publish_by_kind(&app.publisher, &catalog, Echo::KIND, r#"{"n": 7}"#, 2)
        .await
        .unwrap();

    let calls = recorder.wait_for_calls(2).await;
    assert!(calls.iter().all(|call| call.n == 7), "{calls:?}");
    let mut ran: Vec<_> = calls.iter().map(|call| call.id).collect();
    let mut published = ids.clone();
    ran.sort_unstable();
    published.sort_unstable();
    assert_eq!(ran, published);
    assert_ne!(ids[0], ids[1]);
    let unknown = producer::publish_by_kind(&app.publisher, &catalog, "ehco", "{}", 1).await;
    let message = format!("{:#}", unknown.unwrap_err());
    assert!(
        message.contains("unknown job kind `ehco`; known kinds: echo"),
        "{message}"
    );
}

#[tokio::test]
async fn an_oversized_job_from_a_catalog_is_refused_before_it_reaches_the_broker() {
    let (_app, publisher) = publisher_with_max_size("oversized-by-kind", 1_000).await;
    let payload = serde_json::json!({ "text": "x".repeat(2_000) }).to_string();
    let jobs = Catalog::new()
        .with::<Orphan>()
        .encode(Orphan::KIND, &payload, 1)
        .unwrap();

    let result = publisher.publish_encoded(&jobs).await;

    assert!(
        matches!(result, Err(PublishError::TooLarge { max: 1_000, .. })),
        "{result:?}"
    );
}

/// A publisher of `Orphan` jobs in a vhost of its own that refuses jobs over `max` bytes.
async fn publisher_with_max_size(label: &str, max: usize) -> (TestApp, Publisher) {
    let app = spawn_app(label).await;
    let settings = PublisherSettings {
        max_message_size: max,
        ..PublisherSettings::default()
    };
    let topology = Topology::new([Orphan::KIND]).unwrap();
    let publisher = Publisher::connect(&app.amqp, settings, topology, label)
        .await
        .unwrap();
    (app, publisher)
}

/// A dedicated broker (an alarm hurts the whole node) and a publisher on it that has
/// published once and waits at most a second while blocked.
async fn publisher_on_a_broker_of_its_own(label: &str) -> (Broker, TestApp, Publisher) {
    let broker = Broker::dedicated().await.unwrap();
    let app = spawn_app_on(&broker, label).await;
    let settings = PublisherSettings {
        blocked_timeout: Duration::from_secs(1),
        ..PublisherSettings::default()
    };
    let topology = Topology::new([Echo::KIND]).unwrap();
    let publisher = Publisher::connect(&app.amqp, settings, topology, label)
        .await
        .unwrap();
    publisher.publish(&Echo { n: 1 }).await.unwrap();
    (broker, app, publisher)
}

/// Raises the memory alarm (a watermark of 0) or lifts it (RabbitMQ's default, 0.4).
async fn memory_alarm(broker: &Broker, raised: bool) {
    let watermark = if raised { "0" } else { "0.4" };
    broker
        .rabbitmqctl(&["set_vm_memory_high_watermark", watermark])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_publish_blocked_by_a_memory_alarm_fails_after_the_configured_wait() {
    let (broker, _app, publisher) = publisher_on_a_broker_of_its_own("blocked").await;

    memory_alarm(&broker, true).await;
    let started = tokio::time::Instant::now();
    let result = publisher.publish(&Echo { n: 2 }).await;
    let waited = started.elapsed();
    memory_alarm(&broker, false).await;

    assert!(
        matches!(result, Err(PublishError::Blocked(_))),
        "expected Blocked, got {result:?}"
    );
    assert!(result_is_retryable(&result));
    assert!(
        waited < Duration::from_secs(8),
        "blocked publish waited {waited:?}"
    );
    publisher.publish(&Echo { n: 3 }).await.unwrap();
}

#[tokio::test]
async fn closing_a_publisher_during_a_memory_alarm_returns_promptly() {
    let (broker, _app, publisher) = publisher_on_a_broker_of_its_own("close-blocked").await;
    memory_alarm(&broker, true).await;
    // The broker blocks the connection at its next publish; nothing leaves it afterwards,
    // not even a channel close.
    let blocked = publisher.publish(&Echo { n: 2 }).await;
    assert!(
        matches!(blocked, Err(PublishError::Blocked(_))),
        "{blocked:?}"
    );

    let started = tokio::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(60), publisher.close()).await;
    let took = started.elapsed();
    memory_alarm(&broker, false).await;

    assert!(
        closed.is_ok() && took < Duration::from_secs(15),
        "close took {took:?}"
    );
}
