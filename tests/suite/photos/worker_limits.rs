//! The workers' image work honours `MAX_IMAGE_PIXELS` as uploads do: thumbnails and
//! moderation both read an original's header before decoding it, and an image over the
//! worker's limit fails for good instead of being decoded (moderation decoded anything before
//! it reserved room in the decode budget).

use shared::photos::{ImageState, JobState};

use super::app::{Options, spawn_photo_app};
use super::fixtures::{jpeg, photo};

#[tokio::test]
async fn an_original_over_the_workers_pixel_limit_is_neither_thumbnailed_nor_moderated() {
    let mut app = spawn_photo_app("worker-limits", Options::default()).await;
    // The producer takes up to 50 megapixels; this worker only one.
    app.pipeline.photos.max_image_pixels = 1_000_000;
    let image_id = app
        .accepted_upload("olga", jpeg(&photo(1500, 1000, 3)))
        .await;
    let _worker = app.start_worker();

    let status = app.wait_for(image_id, ImageState::Failed).await;

    for kind in ["process_thumbnails", "moderate_content"] {
        let job = &status.jobs[kind];
        assert_eq!(job.state, JobState::Failed, "{kind}: {job:?}");
        let error = job.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("more than the 1000000 pixels allowed"),
            "{kind}: {error}"
        );
    }
}
