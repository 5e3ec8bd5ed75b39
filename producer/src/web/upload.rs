//! `POST /users/{user_id}/avatar`: check the upload, save it, queue its jobs, answer 202.
//!
//! The request waits for the broker's confirms, never for a handler. The client's file name
//! is never used: stored names are ours.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use photos::imaging::{CheckedImage, UploadError, check_upload, decode_cost, strip_metadata};
use photos::storage::{original_key, public_original_key};
use photos::{EmailJob, ModerationJob, NewUpload, Storage, ThumbnailJob};
use rabbitmq_jobs::{Job, PublishError};
use serde_json::json;
use uuid::Uuid;

use super::{ApiError, AppState};

/// What a client refused for a full decode budget is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A user id is 1 to 64 of `[A-Za-z0-9_-]`.
pub fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    let valid = (1..=64).contains(&user_id.len())
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "a user id is 1 to 64 characters of letters, digits, `_` and `-`",
        ))
    }
}

pub async fn upload_avatar(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    check_user_id(&user_id)?;
    // A client that stalls mid-body would hold the request (and its connection) for ever.
    let bytes = tokio::time::timeout(app.body_read_timeout, read_image(&app, request))
        .await
        .map_err(|_| body_timeout(app.body_read_timeout))??;
    let (checked, public_copy, original) = inspect(&app, bytes).await?;
    let image_id = Uuid::new_v4();
    let extension = checked.format.extension();
    let original_key = original_key(image_id, extension);
    let public_key = public_original_key(image_id, extension);
    let byte_size = original.len();
    // Both files before the record: a recorded upload always has its files.
    tokio::try_join!(
        app.storage.put(&original_key, original.into()),
        app.storage.put(&public_key, public_copy),
    )
    .map_err(|e| ApiError::unavailable("storing the image failed", e))?;
    let format = checked.format.to_string();
    let upload = NewUpload {
        image_id,
        user_id: &user_id,
        format: &format,
        width: checked.width,
        height: checked.height,
        byte_size,
        original_key: &original_key,
        public_original_key: &public_key,
        kinds: &[ThumbnailJob::KIND, ModerationJob::KIND, EmailJob::KIND],
    };
    app.store
        .record_upload(&upload)
        .await
        .map_err(|e| ApiError::unavailable("recording the upload failed", e))?;
    if let Err(error) = queue_jobs(&app, image_id, &user_id).await {
        // Nothing was promised yet: forget the upload and let the client retry.
        if let Err(cleanup) = app.store.forget_upload(image_id).await {
            tracing::warn!(%cleanup, %image_id, "could not remove an upload whose jobs failed");
        }
        return Err(ApiError::unavailable(
            "queueing the image's jobs failed",
            error,
        ));
    }
    tracing::info!(%image_id, user_id, format, byte_size, "upload accepted");
    Ok(accepted(image_id))
}

fn accepted(image_id: Uuid) -> Response {
    let status_url = format!("/images/{image_id}");
    let body = Json(json!({ "image_id": image_id, "status_url": status_url }));
    (StatusCode::ACCEPTED, [(header::LOCATION, status_url)], body).into_response()
}

async fn queue_jobs(app: &AppState, image_id: Uuid, user_id: &str) -> Result<(), PublishError> {
    let user_id = user_id.to_owned();
    let thumbnails = ThumbnailJob {
        image_id,
        user_id: user_id.clone(),
    };
    let moderation = ModerationJob {
        image_id,
        user_id: user_id.clone(),
    };
    let email = EmailJob { image_id, user_id };
    tokio::try_join!(
        app.publisher.publish(&thumbnails),
        app.publisher.publish(&moderation),
        app.publisher.publish(&email),
    )?;
    Ok(())
}

/// Checks the image off the async threads (decoding is CPU work) and makes the public copy.
/// The decode first reserves the memory its header declares: with the budget full beyond
/// `decode_wait`, the client is told to come back rather than the process growing.
async fn inspect(app: &AppState, bytes: Bytes) -> Result<(CheckedImage, Vec<u8>, Bytes), ApiError> {
    let limits = app.limits;
    let cost = decode_cost(&bytes, &limits).map_err(upload_error)?;
    let room = app
        .decode_budget
        .reserve_within(cost, app.decode_wait)
        .await
        .map_err(|full| {
            tracing::warn!(%full, cost, "upload refused: the decode memory budget is full");
            ApiError::busy(
                "the server is decoding as many images as its memory allows; please try again shortly",
                RETRY_AFTER,
            )
        })?;
    tokio::task::spawn_blocking(move || {
        let _room = room;
        let checked = check_upload(&bytes, &limits).map_err(upload_error)?;
        let public_copy = strip_metadata(&bytes, checked.format).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the image is malformed: {e}"),
            )
        })?;
        Ok((checked, public_copy, bytes))
    })
    .await
    .map_err(|e| ApiError::internal("checking the image failed", e))?
}

fn upload_error(error: UploadError) -> ApiError {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, error.to_string())
}

/// The image bytes: the `image` field of a multipart form, or a raw `image/*` body.
async fn read_image(app: &AppState, request: Request) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        let limit = app.max_upload_bytes;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| multipart_error(e, limit))?
        {
            if field.name() == Some("image") {
                return field.bytes().await.map_err(|e| multipart_error(e, limit));
            }
        }
        Err(ApiError::bad_request("the form has no `image` field"))
    } else if content_type.starts_with("image/") {
        axum::body::to_bytes(request.into_body(), app.max_upload_bytes)
            .await
            .map_err(|e| body_error(&e.to_string(), app.max_upload_bytes))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the image as the `image` field of a multipart/form-data form, or as the body with an image/* content type",
        ))
    }
}

fn multipart_error(error: MultipartError, limit: usize) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::new(
            error.status(),
            format!("reading the form failed: {}", error.body_text()),
        )
    }
}

fn body_error(message: &str, limit: usize) -> ApiError {
    if message.contains("length limit") {
        too_large(limit)
    } else {
        ApiError::bad_request(format!("reading the upload failed: {message}"))
    }
}

fn body_timeout(after: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!("the upload did not arrive within {after:?}; please send it again"),
    )
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than the {limit}-byte limit"),
    )
}
