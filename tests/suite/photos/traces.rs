//! One trace from the upload request to every job it causes: the producer's and the
//! workers' log lines about one upload share the caller's trace id.

use photos::ImageState;
use support::logs::Logs;
use support::wait_until;

use super::fixtures::{jpeg, photo};
use crate::app::{Options, spawn_app};
use crate::helpers::PATIENCE;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test]
async fn an_uploads_log_lines_in_the_producer_and_in_every_job_share_the_callers_trace_id() {
    // The producer serves from this test's thread: its lines are captured here.
    let producer_logs = Logs::default();
    let _capturing = producer_logs.capture();
    let app = spawn_app("photos-traced", Options::default()).await;
    let worker_logs = Logs::default();
    let _worker = app.start_worker_logged(Some(worker_logs.clone()));
    let part = reqwest::multipart::Part::bytes(jpeg(&photo(300, 200, 5))).file_name("me.jpg");
    let response = app
        .http
        .post(app.url("/users/carol/avatar"))
        .header("traceparent", format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let image_id = response.json::<serde_json::Value>().await.unwrap()["image_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.wait_for(image_id, ImageState::Ready).await;

    let traced = |line: &str| line.contains(&format!("trace_id={TRACE_ID}"));
    assert_eq!(
        producer_logs.lines_where(|l| traced(l) && l.contains("upload accepted")),
        1,
        "producer logs:\n{}",
        producer_logs.text()
    );
    // The three jobs of the upload, and the follow-up a worker queued when two were done.
    for kind in [
        "process_thumbnails",
        "moderate_content",
        "send_email",
        "update_profile_url",
    ] {
        let span = format!("kind=\"{kind}\"");
        let done = |line: &str| traced(line) && line.contains(&span) && line.ends_with("done");
        wait_until(PATIENCE, &format!("{kind} done in the trace"), || async {
            worker_logs.lines_where(done) >= 1
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; worker logs:\n{}", worker_logs.text()));
    }
    // A request without a traceparent starts a trace of its own.
    let other = app.accepted_upload("dave", jpeg(&photo(300, 200, 6))).await;
    app.wait_for(other, ImageState::Ready).await;
    let accepted = |line: &str| line.contains("upload accepted");
    assert_eq!(
        producer_logs.lines_where(|l| accepted(l) && l.contains("trace_id=")),
        2
    );
    assert_eq!(producer_logs.lines_where(|l| accepted(l) && traced(l)), 1);
}
