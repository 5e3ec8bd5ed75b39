//! The observer hears a job's outcome before the broker forgets the job, so a status page
//! never shows "running" for a job a dead worker finished; and each domain's observer hears
//! only its own kinds when one worker serves several.

use rabbitmq_jobs::{
    Job, JobContext, JobEvent, JobObserver, JobOutcome, Observed, Publisher, Registry, Topology,
    work_queue,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::helpers::{
    Echo, PATIENCE, Recorder, echo_registry, fast_publishing, spawn_app, succeed,
};

/// Reports each success, then never returns: the worker "dies" while recording it.
struct StuckOnSuccess(mpsc::UnboundedSender<()>);

impl JobObserver for StuckOnSuccess {
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a> {
        Box::pin(async move {
            if event.outcome == JobOutcome::Succeeded {
                let _ = self.0.send(());
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_job_whose_worker_dies_while_recording_its_success_is_run_again() {
    let app = spawn_app("outcome-before-ack").await;
    let recorder = Recorder::default();
    let (reported, mut reports) = mpsc::unbounded_channel();
    let registry = echo_registry(&recorder, 0, succeed).observe(StuckOnSuccess(reported));
    let doomed = app.start_worker(registry);
    let id = app.publisher.publish(&Echo { n: 5 }).await.unwrap();

    tokio::time::timeout(PATIENCE, reports.recv())
        .await
        .expect("the success was never reported")
        .expect("the observer is gone");
    doomed.kill().await;
    let _survivor = app.start_worker(echo_registry(&recorder, 1, succeed));

    // Had the job been acked before its outcome was recorded, nobody would run it again.
    let calls = recorder.wait_for_calls(2).await;
    assert_eq!((calls[1].id, calls[1].worker), (id, 1));
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}

/// A second domain's job.
#[derive(Serialize, Deserialize)]
struct Pong {
    n: u64,
}

impl Job for Pong {
    const KIND: &'static str = "pong";
    const VERSION: u32 = 1;
}

/// Reports each success as (this observer's name, the job's kind).
struct Successes(&'static str, mpsc::UnboundedSender<(&'static str, String)>);

impl JobObserver for Successes {
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a> {
        Box::pin(async move {
            if event.outcome == JobOutcome::Succeeded {
                let _ = self.1.send((self.0, event.kind.to_owned()));
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn two_domains_registries_merged_into_one_worker_report_each_kind_to_its_own_observer() {
    let app = spawn_app("two-domains").await;
    let (successes, mut heard) = mpsc::unbounded_channel();
    let echoes = echo_registry(&Recorder::default(), 0, succeed)
        .observe(Successes("echoes", successes.clone()));
    let pongs = Registry::new()
        .register(|_: Pong, _: JobContext| async { Ok(()) })
        .observe(Successes("pongs", successes));
    let registry = echoes.merge(pongs).unwrap();
    assert_eq!(registry.kinds().collect::<Vec<_>>(), ["echo", "pong"]);
    let _worker = app.start_worker(registry);

    let topology = Topology::new([Echo::KIND, Pong::KIND]).unwrap();
    let publisher = Publisher::connect(&app.amqp, fast_publishing(), topology, "two-domains")
        .await
        .unwrap();
    publisher.publish(&Echo { n: 1 }).await.unwrap();
    publisher.publish(&Pong { n: 2 }).await.unwrap();
    let mut reports = Vec::new();
    while reports.len() < 2 {
        let report = tokio::time::timeout(PATIENCE, heard.recv())
            .await
            .expect("a success was never reported")
            .expect("the observers are gone");
        reports.push(report);
    }
    reports.sort();
    assert_eq!(
        reports,
        [("echoes", "echo".to_owned()), ("pongs", "pong".to_owned())]
    );
}

#[test]
fn merging_two_registries_that_both_handle_a_kind_is_an_error() {
    let recorder = Recorder::default();
    let first = echo_registry(&recorder, 0, succeed);
    let error = first
        .merge(echo_registry(&recorder, 1, succeed))
        .unwrap_err();
    assert_eq!(error.kind, Echo::KIND);
}
