//! `POST /users/{user_id}/avatar`: read the image, have the photo domain accept it
//! ([`photos::Uploads`]), answer 202 or say what is wrong.
//!
//! The request waits for the upload's transaction (which writes its jobs into the outbox),
//! never for the broker or a handler. The client's file name
//! is never used: stored names are ours.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use photos::UploadError;
use photos::imaging::DecodeError;
use serde_json::json;
use uuid::Uuid;

use super::{ApiError, AppState};

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
    let accepted = app.uploads.accept(&user_id, Vec::from(bytes)).await?;
    Ok(accepted_response(accepted.image_id))
}

fn accepted_response(image_id: Uuid) -> Response {
    let status_url = format!("/images/{image_id}");
    let body = Json(json!({ "image_id": image_id, "status_url": status_url }));
    (StatusCode::ACCEPTED, [(header::LOCATION, status_url)], body).into_response()
}

/// The image's faults are 4xx with what is wrong; ours are 503 (try again) or 500.
impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Image(decode) => {
                let status = match decode {
                    DecodeError::Empty => StatusCode::BAD_REQUEST,
                    DecodeError::NotAnImage
                    | DecodeError::UnsupportedFormat(_)
                    | DecodeError::UnsupportedFeature { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    DecodeError::TooManyPixels { .. } | DecodeError::Corrupt(_) => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                };
                ApiError::new(status, decode.to_string())
            }
            UploadError::Malformed(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
            }
            UploadError::Busy { retry_after } => ApiError::busy(error.to_string(), retry_after),
            UploadError::Storage(e) => ApiError::unavailable("storing the image failed", e),
            UploadError::Store(e) => ApiError::unavailable("recording the upload failed", e),
            UploadError::Queue(e) => ApiError::unavailable("queueing the image's jobs failed", e),
            UploadError::Backlog(e) => ApiError::from(e),
            UploadError::Check(e) => ApiError::internal("checking the image failed", e),
        }
    }
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
