//! What `image_jobs` shows when job events arrive late or twice: a finished job stays
//! finished, a failure gives way only to a success, and a stalled job counts as processing.

use std::time::Duration;

use photos::{ImageState, JobRecord, JobState, NewUpload, PhotoStore};
use support::Postgres;
use uuid::Uuid;

/// A store on a fresh database of its own.
pub async fn fresh_store(label: &str) -> (PhotoStore, String) {
    support::logs::capture();
    // As the superuser: these tests play the producer's and the workers' parts at once.
    let url = Postgres::shared()
        .app_database(label)
        .await
        .unwrap()
        .admin_url;
    let store = PhotoStore::connect(&url, 2, Duration::from_secs(5))
        .await
        .unwrap();
    (store, url)
}

/// Records an upload of `user` with the thumbnail job queued; returns its id.
pub async fn recorded_upload(store: &PhotoStore, user: &str) -> Uuid {
    let image_id = Uuid::new_v4();
    let upload = NewUpload {
        image_id,
        user_id: user,
        format: "jpeg",
        width: 10,
        height: 10,
        byte_size: 100,
        original_key: "original",
        public_original_key: "public",
        kinds: &["process_thumbnails"],
    };
    store.record_upload_alone(&upload).await.unwrap();
    image_id
}

/// Records `state` for the image's thumbnail job, as the status recorder does.
async fn record(store: &PhotoStore, image_id: Uuid, state: JobState, attempt: u32) {
    let error = matches!(state, JobState::Failed | JobState::Stalled).then_some("it broke");
    let record = JobRecord {
        image_id,
        kind: "process_thumbnails",
        state,
        attempt,
        error,
    };
    store.record_job(record).await.unwrap();
}

async fn shown(store: &PhotoStore, image_id: Uuid) -> JobState {
    let status = store.image_status(image_id).await.unwrap().unwrap();
    status.jobs["process_thumbnails"].state
}

#[tokio::test]
async fn a_late_failure_or_start_never_makes_a_done_job_look_otherwise() {
    let (store, _) = fresh_store("records-done").await;
    let image_id = recorded_upload(&store, "erin").await;
    record(&store, image_id, JobState::Running, 1).await;
    record(&store, image_id, JobState::Done, 1).await;

    // A duplicate delivery of the same job runs again and fails, after the first succeeded.
    for late in [JobState::Running, JobState::Retrying, JobState::Failed] {
        record(&store, image_id, late, 2).await;
        assert_eq!(
            shown(&store, image_id).await,
            JobState::Done,
            "after {late:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_job_gives_way_to_a_success_and_to_nothing_else() {
    let (store, _) = fresh_store("records-failed").await;
    let image_id = recorded_upload(&store, "frank").await;
    record(&store, image_id, JobState::Failed, 5).await;
    for late in [JobState::Running, JobState::Retrying, JobState::Stalled] {
        record(&store, image_id, late, 6).await;
        assert_eq!(
            shown(&store, image_id).await,
            JobState::Failed,
            "after {late:?}"
        );
    }

    // A dead letter shovelled back by an operator runs and succeeds.
    record(&store, image_id, JobState::Done, 6).await;
    assert_eq!(shown(&store, image_id).await, JobState::Done);
}

#[tokio::test]
async fn a_stalled_job_is_shown_as_stalled_and_its_image_as_still_processing() {
    let (store, _) = fresh_store("records-stalled").await;
    let image_id = recorded_upload(&store, "grace").await;
    record(&store, image_id, JobState::Running, 1).await;
    record(&store, image_id, JobState::Stalled, 1).await;

    let status = store.image_status(image_id).await.unwrap().unwrap();
    assert_eq!(status.jobs["process_thumbnails"].state, JobState::Stalled);
    assert_eq!(status.state, ImageState::Processing);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["jobs"]["process_thumbnails"]["state"], "stalled");

    // The job's next run moves it on.
    record(&store, image_id, JobState::Done, 2).await;
    assert_eq!(shown(&store, image_id).await, JobState::Done);
}
