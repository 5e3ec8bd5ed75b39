//! The workers' image work honours `MAX_IMAGE_PIXELS` as uploads do: thumbnails and
//! moderation both read an original's header before decoding it, and an image over the
//! worker's limit fails for good instead of being decoded (moderation decoded anything before
//! it reserved room in the decode budget).

use photos::{ImageState, JobState};
use support::wait_until;

use super::fixtures::{jpeg, photo};
use crate::app::{Options, spawn_app};
use crate::helpers::PATIENCE;

#[tokio::test]
async fn an_original_over_the_workers_pixel_limit_is_neither_thumbnailed_nor_moderated() {
    let mut app = spawn_app("worker-limits", Options::default()).await;
    // The producer takes up to 50 megapixels; this worker only one.
    app.handlers.pipeline.photos.max_image_pixels = 1_000_000;
    let image_id = app
        .accepted_upload("olga", jpeg(&photo(1500, 1000, 3)))
        .await;
    let _worker = app.start_worker();

    // The image is `failed` with the first of them; the other is recorded a moment later.
    let kinds = ["process_thumbnails", "moderate_content"];
    wait_until(PATIENCE, "both image jobs to be failed", || async {
        let status = app.image(image_id).await;
        kinds.iter().all(|kind| {
            status
                .jobs
                .get(*kind)
                .is_some_and(|j| j.state == JobState::Failed)
        })
    })
    .await
    .unwrap();

    let status = app.image(image_id).await;
    assert_eq!(status.state, ImageState::Failed);
    for kind in kinds {
        let job = &status.jobs[kind];
        assert_eq!(job.state, JobState::Failed, "{kind}: {job:?}");
        let error = job.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("more than the 1000000 pixels allowed"),
            "{kind}: {error}"
        );
    }
}
