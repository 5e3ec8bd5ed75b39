//! The broker's side of the contract: dead letters are never dropped, and a kind whose queues
//! are missing does not stop a worker from serving the others.

use lapin::options::{BasicGetOptions, BasicRejectOptions};
use rabbitmq_jobs::{
    Job, JobContext, JobError, Publisher, Registry, Topology, TopologyMode, dead_letter_queue,
    work_queue,
};
use serde::{Deserialize, Serialize};

use crate::helpers::{Echo, Recorder, echo_registry, fast_publishing, spawn_app};

#[tokio::test]
async fn a_dead_letter_survives_being_returned_to_its_queue_many_times() {
    let app = spawn_app("dlq-requeues").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, |_, _| async {
        Err(JobError::permanent("bad input"))
    }));
    app.publisher.publish(&Echo { n: 1 }).await.unwrap();
    let (_connection, channel) = app.raw_channel().await;
    let dlq = dead_letter_queue(Echo::KIND);
    support::wait_until(crate::helpers::PATIENCE, "the dead letter", || async {
        app.ready(&channel, &dlq).await == 1
    })
    .await
    .unwrap();

    // What "Nack, requeue" in the management UI does, 25 times: RabbitMQ 4 drops a message
    // after 20 such returns unless its queue says otherwise.
    for _ in 0..25 {
        let message = channel
            .basic_get(dlq.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
            .expect("the dead letter is gone");
        message
            .delivery
            .reject(BasicRejectOptions { requeue: true })
            .await
            .unwrap();
    }

    let letters = app.dead_letters(Echo::KIND, 1).await;
    assert_eq!(letters[0].error(), "bad input");
}

/// A second kind, whose queues the test creates late.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Late {
    n: u64,
}

impl Job for Late {
    const KIND: &'static str = "late";
    const VERSION: u32 = 1;
}

#[tokio::test]
async fn a_worker_serves_its_other_kinds_while_one_kinds_queues_are_missing_and_takes_it_up_later()
{
    let app = spawn_app("missing-kind").await;
    let recorder = Recorder::default();
    let (late_tx, mut late_rx) = tokio::sync::mpsc::unbounded_channel();
    let registry: Registry = echo_registry(&recorder, 0, |_, _| async { Ok(()) }).register(
        move |job: Late, _: JobContext| {
            let late_tx = late_tx.clone();
            async move {
                let _ = late_tx.send(job.n);
                Ok(())
            }
        },
    );
    // Verify only, as a least-privilege worker does: `late` has no queues yet.
    let mut amqp = app.amqp.clone();
    amqp.topology = TopologyMode::Verify;
    let worker = rabbitmq_jobs::Worker::new(
        amqp,
        app.worker_settings("verify"),
        fast_publishing(),
        registry,
    )
    .unwrap();
    let _worker = crate::helpers::RunningWorker::spawn(move || async move { worker });

    app.publisher.publish(&Echo { n: 1 }).await.unwrap();
    recorder.wait_for_calls(1).await;

    // An administrator creates the missing queues; the worker takes the kind up by itself.
    let topology = Topology::new([Late::KIND]).unwrap();
    let publisher = Publisher::connect(&app.amqp, fast_publishing(), topology, "late")
        .await
        .unwrap();
    publisher.publish(&Late { n: 7 }).await.unwrap();
    let handled = tokio::time::timeout(crate::helpers::PATIENCE, late_rx.recv())
        .await
        .expect("the late kind was never consumed");
    assert_eq!(handled, Some(7));
    app.wait_until_settled(&work_queue(Late::KIND)).await;
}

#[tokio::test]
async fn queues_are_declared_with_balanced_leaders_and_queues_declared_without_are_kept() {
    let app = spawn_app("leader-locator").await;
    let management = &app.vhost.management;
    let echo = management
        .queue_arguments(&app.vhost.name, &work_queue(Echo::KIND))
        .await
        .unwrap();
    assert_eq!(echo["x-queue-leader-locator"], "balanced", "{echo}");

    // The queues of `late` as an earlier version declared them: no leader locator, which the
    // broker refuses to redeclare with one.
    let (_connection, channel) = app.raw_channel().await;
    let description = Topology::new([Late::KIND]).unwrap().describe();
    for (name, args) in description
        .queues
        .iter()
        .filter(|(name, _)| name.contains("late"))
    {
        let kept: std::collections::BTreeMap<_, _> = args
            .inner()
            .iter()
            .filter(|(key, _)| key.as_str() != "x-queue-leader-locator")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let legacy = lapin::types::FieldTable::from(kept);
        let options = lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(name.as_str().into(), options, legacy)
            .await
            .unwrap();
    }

    let publisher = Publisher::connect(
        &app.amqp,
        fast_publishing(),
        Topology::new([Late::KIND]).unwrap(),
        "legacy",
    )
    .await
    .expect("the publisher keeps the earlier queues instead of failing");
    publisher.publish(&Late { n: 1 }).await.unwrap();
    let late = management
        .queue_arguments(&app.vhost.name, &work_queue(Late::KIND))
        .await
        .unwrap();
    assert!(late.get("x-queue-leader-locator").is_none(), "{late}");
    assert_eq!(app.ready(&channel, &work_queue(Late::KIND)).await, 1);
}
