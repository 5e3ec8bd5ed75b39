//! Workers die, and the jobs they held are not to blame: only a job that keeps killing its
//! worker while it runs alone is dead-lettered, never the jobs beside it or behind it.

use std::collections::HashSet;
use std::time::Duration;

use rabbitmq_jobs::{Job, JobId, dead_letter_queue, quarantine_queue, work_queue};
use support::wait_until;

use crate::helpers::{Echo, PATIENCE, Recorder, echo_registry, publish_echoes, spawn_app, succeed};

/// A worker that runs `concurrency` echo jobs at once and never finishes one.
fn hanging_worker(
    app: &crate::helpers::TestApp,
    recorder: &Recorder,
    id: usize,
) -> crate::helpers::RunningWorker {
    let registry = echo_registry(recorder, id, |_, _| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    let mut settings = app.worker_settings(&format!("hanging{id}"));
    settings.concurrency = 10;
    app.start_worker_with(registry, settings)
}

fn calls_by(recorder: &Recorder, worker: usize) -> usize {
    recorder
        .calls()
        .iter()
        .filter(|c| c.worker == worker)
        .count()
}

#[tokio::test]
async fn jobs_held_by_a_worker_killed_six_times_are_never_dead_lettered() {
    let app = spawn_app("killed-six-times").await;
    let recorder = Recorder::default();
    let ids = publish_echoes(&app.publisher, 60).await;

    // Six workers in turn take ten jobs each and die holding them, as an OOM kill would.
    // What a dead worker held comes back first, so each worker receives its predecessor's
    // jobs too (RabbitMQ's own count then said "delivered 5 times" for some).
    for round in 0..6 {
        let worker = hanging_worker(&app, &recorder, round);
        wait_until(PATIENCE, "the worker to hold ten jobs", || async {
            calls_by(&recorder, round) >= 10
        })
        .await
        .unwrap();
        worker.kill().await;
    }
    let _healthy = app.start_worker(echo_registry(&recorder, 99, succeed));

    wait_until(
        PATIENCE,
        "every job handled by the healthy worker",
        || async {
            let handled: HashSet<JobId> = recorder
                .calls()
                .iter()
                .filter(|c| c.worker == 99)
                .map(|c| c.id)
                .collect();
            ids.iter().all(|id| handled.contains(id))
        },
    )
    .await
    .unwrap();
    for queue in [work_queue(Echo::KIND), quarantine_queue(Echo::KIND)] {
        app.wait_until_settled(&queue).await;
    }
    let (_connection, channel) = app.raw_channel().await;
    assert_eq!(
        app.ready(&channel, &dead_letter_queue(Echo::KIND)).await,
        0,
        "an innocent job was dead-lettered"
    );
}

/// Job 13 "crashes" its worker: the test kills the worker as soon as 13 starts on it. The
/// others take a little while, so they run beside it.
fn crashing_registry(recorder: &Recorder, worker: usize) -> rabbitmq_jobs::Registry {
    echo_registry(recorder, worker, |job, _| async move {
        if job.n == 13 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    })
}

fn poison_runs(recorder: &Recorder) -> usize {
    recorder.calls().iter().filter(|c| c.n == 13).count()
}

#[tokio::test]
async fn a_job_that_kills_every_worker_it_runs_on_is_dead_lettered_and_its_neighbours_are_not() {
    let app = spawn_app("poison").await;
    let recorder = Recorder::default();
    let (_connection, channel) = app.raw_channel().await;
    let dlq = dead_letter_queue(Echo::KIND);
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(app.publisher.publish(&Echo { n }).await.unwrap());
    }

    for round in 1..=8 {
        let runs_before = poison_runs(&recorder);
        let worker = app.start_worker(crashing_registry(&recorder, round));
        wait_until(PATIENCE, "job 13 to run or be dead-lettered", || async {
            poison_runs(&recorder) > runs_before || app.ready(&channel, &dlq).await == 1
        })
        .await
        .unwrap();
        worker.kill().await;
        if app.ready(&channel, &dlq).await == 1 {
            break;
        }
    }
    let _healthy = app.start_worker(crashing_registry(&recorder, 99));

    let letters = app.dead_letters(Echo::KIND, 1).await;
    assert_eq!(letters.len(), 1, "only the poison is dead-lettered yet");
    let poison: Echo = serde_json::from_slice::<serde_json::Value>(&letters[0].body)
        .map(|v| serde_json::from_value(v["payload"].clone()).unwrap())
        .unwrap();
    assert_eq!(poison.n, 13);
    assert!(
        letters[0]
            .error()
            .contains("lost its worker 3 times while it ran alone"),
        "{}",
        letters[0].error()
    );
    // Twice among others (then quarantined), three times alone.
    assert_eq!(poison_runs(&recorder), 5);
    // The others leave their queues only by succeeding: none is dead-lettered.
    for queue in [work_queue(Echo::KIND), quarantine_queue(Echo::KIND)] {
        app.wait_until_settled(&queue).await;
    }
    assert_eq!(
        app.ready(&channel, &dlq).await,
        0,
        "an innocent job was dead-lettered"
    );
    let started: HashSet<JobId> = recorder.calls().iter().map(|c| c.id).collect();
    assert!(ids.iter().all(|id| started.contains(id)));
}
