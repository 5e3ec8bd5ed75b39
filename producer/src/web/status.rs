//! `GET /images/{id}` and `GET /users/{id}`: progress and profile, as the app shows them.

use axum::Json;
use axum::extract::{Path, State};
use photos::{ImageStatus, UserProfile};
use uuid::Uuid;

use super::upload::check_user_id;
use super::{ApiError, AppState};

pub async fn image(
    State(app): State<AppState>,
    Path(image_id): Path<String>,
) -> Result<Json<ImageStatus>, ApiError> {
    let image_id: Uuid = image_id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{image_id}` is not an image id")))?;
    app.uploads
        .store
        .image_status(image_id)
        .await
        .map_err(|e| ApiError::unavailable("reading the image failed", e))?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no image {image_id}")))
}

pub async fn user(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<UserProfile>, ApiError> {
    check_user_id(&user_id)?;
    app.uploads
        .store
        .user_profile(&user_id)
        .await
        .map_err(|e| ApiError::unavailable("reading the user failed", e))?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no user `{user_id}` (a user exists from their first upload)"
            ))
        })
}
