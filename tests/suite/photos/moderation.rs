//! Moderation gates what is served: nothing of an upload answers under `/media/` before its
//! approval, a rejected upload's files never do, and its status names nothing of the match.

use std::path::Path;

use photos::ImageState;
use photos::imaging::{Fingerprint, UploadLimits};
use uuid::Uuid;

use super::fixtures::{jpeg, photo};
use crate::app::{App, Options, spawn_app};

/// Every path an upload's files would be served at.
fn media_paths(image_id: Uuid) -> Vec<String> {
    ["original.jpg", "64.jpg", "256.jpg", "512.jpg"]
        .iter()
        .map(|file| format!("/media/{image_id}/{file}"))
        .collect()
}

async fn assert_not_served(app: &App, image_id: Uuid) {
    for path in media_paths(image_id) {
        let response = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "GET {path} is served");
    }
    let public = app.dir.join("storage/public").join(image_id.to_string());
    assert!(!public.exists(), "{} exists", public.display());
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn nothing_of_an_upload_is_served_or_listed_before_moderation_approves_it() {
    let app = spawn_app("held-back", Options::default()).await;
    // No worker yet: the upload is accepted and waits for moderation.
    let image_id = app
        .accepted_upload("hana", jpeg(&photo(400, 300, 11)))
        .await;
    let status = app.image(image_id).await;
    assert_eq!(status.state, ImageState::Processing);
    assert_eq!(status.original_url, None);
    assert!(status.thumbnails.is_empty(), "{:?}", status.thumbnails);
    assert_not_served(&app, image_id).await;

    let _worker = app.start_worker();
    let status = app.wait_for(image_id, ImageState::Ready).await;
    let original = status
        .original_url
        .expect("an approved upload lists its copy");
    assert_eq!(original, format!("/media/{image_id}/original.jpg"));
    for path in media_paths(image_id) {
        app.get_bytes(&path).await;
    }
    let pending = app.dir.join("storage/pending").join(image_id.to_string());
    assert_eq!(
        files_in(&pending),
        Vec::<String>::new(),
        "left under pending/"
    );
}

#[tokio::test]
async fn a_rejected_upload_is_never_served_and_its_status_names_nothing_of_the_match() {
    let banned = jpeg(&photo(800, 800, 7));
    let fingerprint = Fingerprint::of_image(&banned, &UploadLimits::default()).unwrap();
    let options = Options {
        blocklist: Some(format!("{fingerprint}\n")),
        ..Options::default()
    };
    let app = spawn_app("rejected-hidden", options).await;
    let image_id = app.accepted_upload("ivan", banned).await;
    assert_not_served(&app, image_id).await;

    let _worker = app.start_worker();
    let status = app.wait_for(image_id, ImageState::Rejected).await;
    assert_eq!(status.original_url, None);
    assert!(status.thumbnails.is_empty(), "{:?}", status.thumbnails);
    assert_not_served(&app, image_id).await;
    let reason = status.rejection_reason.expect("a rejection says so");
    assert_eq!(reason, photos::REJECTION_NOTICE);
    for secret in [
        fingerprint.to_string(),
        "distance".into(),
        "blocklist".into(),
    ] {
        assert!(
            !reason.contains(&secret),
            "the reason reveals `{secret}`: {reason}"
        );
    }
    // The served copy is gone from the held-back files; the private original stays.
    let pending = app.dir.join("storage/pending").join(image_id.to_string());
    assert!(
        !files_in(&pending).iter().any(|f| f.starts_with("original")),
        "{:?}",
        files_in(&pending)
    );
}
