//! Jobs carry the W3C trace they were published in (`traceparent`), so a request's log
//! lines and its jobs' share one trace id; a job published outside any trace starts one.

use std::time::Duration;

use lapin::options::BasicGetOptions;
use rabbitmq_jobs::{Job, JobError, TRACEPARENT, TraceContext, header_str, work_queue};

use crate::helpers::{Echo, Recorder, echo_registry, publish_echoes, spawn_app};

const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn a_job_runs_in_the_trace_it_was_published_in_through_a_retry_and_a_delay() {
    let app = spawn_app("traced").await;
    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, |job, ctx| async move {
        if job.n == 1 && ctx.attempt == 1 {
            return Err(JobError::retry("the first run of job 1 fails"));
        }
        Ok(())
    }));
    let given = TraceContext::parse(GIVEN).unwrap();

    given
        .scope(async {
            app.publisher.publish(&Echo { n: 1 }).await.unwrap();
            let delay = Duration::from_millis(300);
            app.publisher
                .publish_in(&Echo { n: 2 }, delay)
                .await
                .unwrap();
        })
        .await;

    let calls = recorder.wait_for_calls(3).await;
    for call in &calls {
        assert_eq!(call.trace.trace_id(), given.trace_id(), "{call:?}");
        // Each run is a span of its own, called from the publisher's.
        assert_ne!(call.trace.span_id(), given.span_id(), "{call:?}");
    }
    assert!(calls.iter().any(|call| call.n == 1 && call.attempt == 2));
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
}

#[tokio::test]
async fn a_job_published_outside_any_trace_starts_one_of_its_own_in_its_traceparent_header() {
    let app = spawn_app("untraced").await;
    publish_echoes(&app.publisher, 2).await;
    let (_connection, channel) = app.raw_channel().await;

    let mut traces = Vec::new();
    for _ in 0..2 {
        let message = channel
            .basic_get(
                work_queue(Echo::KIND).as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .unwrap()
            .expect("a published job in its queue");
        let header = header_str(message.delivery.properties.headers().as_ref(), TRACEPARENT)
            .expect("a traceparent header");
        let trace = TraceContext::parse(&header)
            .unwrap_or_else(|| panic!("an invalid traceparent: {header}"));
        traces.push(trace.trace_id());
    }
    assert_ne!(traces[0], traces[1], "two untraced publishes share a trace");
}
