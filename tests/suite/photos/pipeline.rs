//! Uploads become thumbnails, a verdict, a mail and an avatar; duplicates have one effect;
//! uploads are accepted while no worker runs.

use std::io::Cursor;

use photos::ImageState;
use photos::imaging::{Fingerprint, UploadLimits};
use uuid::Uuid;

use super::fixtures::{jpeg, photo, png, with_gps_exif};
use crate::app::{App, Options, spawn_app};

/// Thumbnails of `image_id` decode as JPEG squares of 64, 256 and 512 px.
async fn assert_thumbnails(app: &App, image_id: Uuid) {
    let status = app.image(image_id).await;
    assert_eq!(
        status.thumbnails.keys().collect::<Vec<_>>(),
        ["256", "512", "64"]
    );
    for (size, url) in &status.thumbnails {
        let bytes = app.get_bytes(url).await;
        let thumbnail = image::load(Cursor::new(bytes), image::ImageFormat::Jpeg).unwrap();
        let size: u32 = size.parse().unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (size, size));
    }
}

#[tokio::test]
async fn a_jpeg_and_a_png_upload_end_ready_with_thumbnails_an_avatar_and_one_mail_each() {
    let app = spawn_app("photos-ready", Options::default()).await;
    let _worker = app.start_worker();
    let phone_photo = with_gps_exif(&jpeg(&photo(1200, 900, 1)));

    let jpeg_id = app.accepted_upload("alice", phone_photo).await;
    let response = app
        .upload_raw("bob", png(&photo(640, 800, 2)), "image/png")
        .await;
    assert_eq!(response.status(), 202);
    let png_id: Uuid = response.json::<serde_json::Value>().await.unwrap()["image_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    for (user, image_id) in [("alice", jpeg_id), ("bob", png_id)] {
        let status = app.wait_for(image_id, ImageState::Ready).await;
        assert_thumbnails(&app, image_id).await;
        let profile = app.user(user).await;
        assert_eq!(profile["avatar_url"], status.thumbnails["512"].as_str());
        let original = app.get_bytes(status.original_url.as_deref().unwrap()).await;
        assert!(
            !original.windows(4).any(|w| w == b"Exif"),
            "the served original keeps EXIF"
        );
        image::load_from_memory(&original).unwrap();
    }
    let mails = app.outbox();
    assert_eq!(mails.len(), 2, "one mail per upload");
    assert!(mails.iter().any(|m| m.contains("alice@users.test")));
    assert!(mails.iter().any(|m| m.contains("bob@users.test")));
}

#[tokio::test]
async fn a_blocklisted_image_ends_rejected_and_the_avatar_stays_as_it_was() {
    let banned = jpeg(&photo(800, 800, 7));
    let fingerprint = Fingerprint::of_image(&banned, &UploadLimits::default()).unwrap();
    let options = Options {
        blocklist: Some(format!("# known banned images\n{fingerprint}\n")),
        ..Options::default()
    };
    let app = spawn_app("photos-rejected", options).await;
    let _worker = app.start_worker();
    let good = app
        .accepted_upload("carol", jpeg(&photo(800, 600, 3)))
        .await;
    let before = app.wait_for(good, ImageState::Ready).await;

    // A re-encoded, smaller copy still matches the banned image's perceptual hash.
    let copy = image::load_from_memory(&banned).unwrap().resize(
        600,
        600,
        image::imageops::FilterType::Triangle,
    );
    let rejected = app.accepted_upload("carol", jpeg(&copy.to_rgb8())).await;

    let status = app.wait_for(rejected, ImageState::Rejected).await;
    assert_eq!(
        status.rejection_reason.as_deref(),
        Some(photos::REJECTION_NOTICE)
    );
    assert_eq!(
        app.user("carol").await["avatar_url"],
        before.thumbnails["512"].as_str()
    );
}

#[tokio::test]
async fn the_same_jobs_delivered_twice_have_one_effect() {
    let app = spawn_app("photos-twice", Options::default()).await;
    let _worker = app.start_worker();
    let image_id = app.accepted_upload("dave", jpeg(&photo(500, 500, 4))).await;
    let status = app.wait_for(image_id, ImageState::Ready).await;
    let avatar = app.user("dave").await["avatar_url"].clone();

    // Deliver every job of the upload again, as the broker does after a lost ack.
    let user_id = "dave".to_owned();
    let (thumbnails, moderation, email, profile) = (
        photos::ThumbnailJob {
            image_id,
            user_id: user_id.clone(),
        },
        photos::ModerationJob {
            image_id,
            user_id: user_id.clone(),
        },
        photos::EmailJob {
            image_id,
            user_id: user_id.clone(),
        },
        photos::ProfileUrlJob { image_id, user_id },
    );
    let published_at = chrono::Utc::now();
    app.publisher.publish(&thumbnails).await.unwrap();
    app.publisher.publish(&moderation).await.unwrap();
    app.publisher.publish(&email).await.unwrap();
    app.publisher.publish(&profile).await.unwrap();

    let db = sqlx::PgPool::connect(&app.database.admin_url)
        .await
        .unwrap();
    wait_for_jobs_handled_since(&db, image_id, published_at).await;
    assert_eq!(
        app.outbox().len(),
        1,
        "a duplicate delivery sent a second mail"
    );
    assert_eq!(app.user("dave").await["avatar_url"], avatar);
    let after = app.image(image_id).await;
    assert_eq!(
        (after.state, after.thumbnails),
        (ImageState::Ready, status.thumbnails)
    );
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM sent_emails")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sent, 1);
}

/// Waits until all four jobs of `image_id` were recorded done after `since`.
async fn wait_for_jobs_handled_since(
    db: &sqlx::PgPool,
    image_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
) {
    support::wait_until(crate::helpers::PATIENCE, "the duplicate jobs to be handled", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM image_jobs WHERE image_id = $1 AND state = 'done' AND updated_at > $2",
        )
        .bind(image_id)
        .bind(since)
        .fetch_one(db)
        .await
        .is_ok_and(|done| done == 4)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn uploads_are_accepted_with_no_worker_running_and_processed_once_one_starts() {
    let app = spawn_app("photos-decoupled", Options::default()).await;
    let mut images = Vec::new();
    for n in 0..3 {
        images.push(
            app.accepted_upload(&format!("user{n}"), jpeg(&photo(400, 300, 10 + n)))
                .await,
        );
    }
    for image_id in &images {
        let status = app.image(*image_id).await;
        assert_eq!(status.state, ImageState::Processing);
        assert!(
            status
                .jobs
                .values()
                .all(|j| j.state == photos::JobState::Queued)
        );
    }

    let _worker = app.start_worker();

    for image_id in images {
        app.wait_for(image_id, ImageState::Ready).await;
        assert_thumbnails(&app, image_id).await;
    }
    assert_eq!(app.outbox().len(), 3);
}

#[tokio::test]
async fn a_mail_sent_again_after_its_record_was_lost_leaves_one_file_with_the_same_message_id() {
    let app = spawn_app("photos-mail-again", Options::default()).await;
    let _worker = app.start_worker();
    let image_id = app.accepted_upload("kate", jpeg(&photo(300, 300, 8))).await;
    app.wait_for(image_id, ImageState::Ready).await;
    let first = app.outbox();
    assert_eq!(first.len(), 1);

    app.lose_mail_record(image_id, "kate").await;
    let db = sqlx::PgPool::connect(&app.database.admin_url)
        .await
        .unwrap();
    support::wait_until(
        crate::helpers::PATIENCE,
        "the mail to be sent again",
        || async {
            sqlx::query_scalar::<_, String>("SELECT state FROM sent_emails")
                .fetch_one(&db)
                .await
                .is_ok_and(|state| state == "sent")
        },
    )
    .await
    .unwrap();

    let mails = app.outbox();
    assert_eq!(mails.len(), 1, "sending again added a file");
    let message_id = |mail: &str| {
        mail.lines()
            .find(|line| line.to_ascii_lowercase().starts_with("message-id:"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no Message-ID in {mail}"))
    };
    let id = message_id(&mails[0]);
    assert!(id.contains(&image_id.to_string()), "{id}");
    assert_eq!(id, message_id(&first[0]));
}
