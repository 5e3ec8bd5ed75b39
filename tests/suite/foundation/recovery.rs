//! Workers and publishers heal: a dead worker's job goes to another, and connections cut by
//! the broker or a broker restart lose nothing.

use rabbitmq_jobs::{Job, JobId, Publisher, work_queue};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{Broker, wait_until};

use crate::helpers::{
    Echo, PATIENCE, Recorder, TestApp, echo_registry, spawn_app, spawn_app_on, succeed,
};

#[tokio::test]
async fn a_job_held_by_a_worker_that_dies_mid_job_is_handled_by_another() {
    let app = spawn_app("dead-worker").await;
    let recorder = Recorder::default();
    let hanging = echo_registry(&recorder, 0, |_, _| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    let doomed = app.start_worker(hanging);
    let id = app.publisher.publish(&Echo { n: 1 }).await.unwrap();
    recorder.wait_for_calls(1).await;

    doomed.kill().await;
    let _survivor = app.start_worker(echo_registry(&recorder, 1, succeed));

    let calls = recorder.wait_for_calls(2).await;
    assert_eq!((calls[1].id, calls[1].worker), (id, 1));
    assert!(!calls[0].redelivered && calls[1].redelivered, "{calls:?}");
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}

/// 1,000 jobs published one by one in the background, as web requests would, paced over
/// about four seconds so that faults land while jobs flow both ways.
struct Traffic {
    published: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<JobId>>,
}

impl Traffic {
    fn start(publisher: &Publisher) -> Self {
        let publisher = publisher.clone();
        let published = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&published);
        let task = tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(4));
            let mut ids = Vec::new();
            for n in 0..1_000 {
                pace.tick().await;
                ids.push(
                    publisher
                        .publish(&Echo { n })
                        .await
                        .expect("publish across the fault"),
                );
                counter.fetch_add(1, Ordering::SeqCst);
            }
            ids
        });
        Self { published, task }
    }

    async fn wait_for_published(&self, count: usize) {
        wait_until(PATIENCE, &format!("{count} jobs published"), || async {
            self.published.load(Ordering::SeqCst) >= count
        })
        .await
        .unwrap();
    }

    async fn finish(self) -> Vec<JobId> {
        self.task.await.unwrap()
    }
}

/// Every published job was handled, and the queue is drained.
async fn assert_nothing_lost(app: &TestApp, recorder: &Recorder, ids: Vec<JobId>) {
    recorder.wait_for_distinct(ids.len()).await;
    let handled: HashSet<JobId> = recorder.calls().iter().map(|c| c.id).collect();
    let missing = ids.iter().filter(|id| !handled.contains(id)).count();
    assert_eq!(missing, 0, "{missing} jobs lost");
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}

#[tokio::test]
async fn connections_closed_by_the_broker_while_jobs_flow_lose_nothing() {
    let app = spawn_app("forced-close").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    let traffic = Traffic::start(&app.publisher);

    // The broker's own view (rabbitmqctl), not the management statistics: under load those
    // can miss a fresh connection for minutes, and a connection they miss is not closed.
    let broker = Broker::shared();
    let vhost = app.vhost.name.as_str();
    for published in [200, 600] {
        traffic.wait_for_published(published).await;
        let seen = std::sync::Mutex::new(String::new());
        let listed = wait_until(
            PATIENCE,
            "the publisher's and the worker's connections to be listed",
            || async {
                let listed = broker
                    .rabbitmqctl(&["list_connections", "-q", "-p", vhost, "client_properties"])
                    .await
                    .unwrap_or_else(|e| e);
                let both = listed.contains(" publisher") && listed.contains(" consumer");
                *seen.lock().unwrap() = listed;
                both
            },
        )
        .await;
        if let Err(timeout) = listed {
            panic!("{timeout}; last listed: {}", seen.lock().unwrap());
        }
        broker
            .rabbitmqctl(&["close_all_connections", "-p", vhost, "test fault injection"])
            .await
            .unwrap();
    }

    let ids = traffic.finish().await;
    assert_nothing_lost(&app, &recorder, ids).await;
}

#[tokio::test]
async fn a_broker_restart_while_jobs_flow_loses_nothing_and_consumers_come_back() {
    let broker = Broker::dedicated().await.unwrap();
    let app = spawn_app_on(&broker, "restart").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    let traffic = Traffic::start(&app.publisher);

    traffic.wait_for_published(200).await;
    broker.rabbitmqctl(&["stop_app"]).await.unwrap();
    broker.rabbitmqctl(&["start_app"]).await.unwrap();

    let ids = traffic.finish().await;
    assert_nothing_lost(&app, &recorder, ids).await;
    let queue = work_queue(Echo::KIND);
    wait_until(PATIENCE, "the worker's consumer to be back", || async {
        broker
            .management()
            .consumed_queues(&app.vhost.name)
            .await
            .is_ok_and(|q| q.contains(&queue))
    })
    .await
    .unwrap();
    let consumers = broker
        .management()
        .consumed_queues(&app.vhost.name)
        .await
        .unwrap();
    assert_eq!(consumers, [queue], "duplicate or stray consumers");
}

#[tokio::test]
async fn a_consumer_cancelled_by_the_broker_subscribes_again() {
    let app = spawn_app("cancelled").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, succeed));
    let queue = work_queue(Echo::KIND);
    let consumed = || async {
        app.vhost
            .management
            .consumed_queues(&app.vhost.name)
            .await
            .unwrap_or_default()
    };
    wait_until(PATIENCE, "the consumer", || async {
        consumed().await.contains(&queue)
    })
    .await
    .unwrap();

    app.vhost
        .management
        .delete_queue(&app.vhost.name, &queue)
        .await
        .unwrap();
    wait_until(PATIENCE, "the queue to be declared again", || async {
        app.vhost
            .management
            .queue(&app.vhost.name, &queue)
            .await
            .is_ok_and(|q| q.consumers == 1)
    })
    .await
    .unwrap();
    app.publisher.publish(&Echo { n: 1 }).await.unwrap();

    recorder.wait_for_calls(1).await;
}

#[tokio::test]
async fn a_publish_right_after_the_broker_closed_every_connection_goes_through_at_once() {
    let app = spawn_app("publish-after-close").await;
    // Both lanes of the publisher are built and hold a pooled connection each.
    for n in 0..4 {
        app.publisher.publish(&Echo { n }).await.unwrap();
    }
    let broker = Broker::shared();
    let vhost = app.vhost.name.as_str();
    // close_all_connections has closed them when it returns; the next publishes meet the
    // dead connections (the app's worker reconnects at once, so waiting for an empty vhost,
    // polled through rabbitmqctl, was itself flaky under load).
    broker
        .rabbitmqctl(&["close_all_connections", "-p", vhost, "test fault injection"])
        .await
        .unwrap();

    let started = tokio::time::Instant::now();
    for n in 4..8 {
        app.publisher.publish(&Echo { n }).await.unwrap();
    }
    let took = started.elapsed();
    // A dead connection held while waiting for a pooled one kept the pool full until its
    // 5 s wait timeout.
    assert!(took < Duration::from_secs(3), "publishing took {took:?}");
}
