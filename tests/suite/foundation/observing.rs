//! The observer hears a job's outcome before the broker forgets the job, so a status page
//! never shows "running" for a job a dead worker finished.

use rabbitmq_jobs::{Job, JobEvent, JobObserver, JobOutcome, Observed, work_queue};
use tokio::sync::mpsc;

use crate::helpers::{Echo, PATIENCE, Recorder, echo_registry, spawn_app, succeed};

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
