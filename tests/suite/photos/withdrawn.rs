//! An upload whose jobs could not all be queued is withdrawn, and the client told to retry;
//! the jobs queued before the failure still arrive and have nothing to do. A job for an image
//! that never existed is still a bad job.

use photos::{PhotoStore, ThumbnailJob};
use rabbitmq_jobs::{Job, dead_letter_queue, work_queue};
use uuid::Uuid;

use super::fixtures::{jpeg, photo};
use crate::app::{Options, spawn_app};

#[tokio::test]
async fn jobs_of_a_withdrawn_upload_have_nothing_to_do_and_a_job_for_no_image_is_dead_lettered() {
    let app = spawn_app("photos-withdrawn", Options::default()).await;
    // Accepted with no worker running, so its three jobs wait in their queues...
    let withdrawn = app.accepted_upload("lena", jpeg(&photo(300, 200, 5))).await;
    // ...then withdrawn, as the producer does when a later publish of the upload fails.
    let store = PhotoStore::connect(
        &app.database.producer_url,
        1,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.forget_upload(withdrawn).await.unwrap();
    let never = ThumbnailJob {
        image_id: Uuid::new_v4(),
        user_id: "nobody".into(),
    };
    app.publisher.publish(&never).await.unwrap();

    let _worker = app.start_worker();

    let management = &app.vhost.management;
    let thumbnails_dlq = dead_letter_queue(ThumbnailJob::KIND);
    support::wait_until(
        crate::helpers::PATIENCE,
        "the bad job's dead letter",
        || async {
            management
                .queue(&app.vhost.name, &thumbnails_dlq)
                .await
                .is_ok_and(|q| q.messages_ready == 1)
        },
    )
    .await
    .unwrap();
    for kind in ["process_thumbnails", "moderate_content", "send_email"] {
        support::wait_until(crate::helpers::PATIENCE, "the queue to drain", || async {
            management
                .queue(&app.vhost.name, &work_queue(kind))
                .await
                .is_ok_and(|q| q.messages_ready + q.messages_unacknowledged == 0)
        })
        .await
        .unwrap();
        let dead = management
            .queue(&app.vhost.name, &dead_letter_queue(kind))
            .await
            .unwrap();
        let expected = u64::from(kind == ThumbnailJob::KIND);
        assert_eq!(dead.messages_ready, expected, "dead letters of {kind}");
    }
    assert!(app.outbox().is_empty(), "a withdrawn upload got its mail");
}
