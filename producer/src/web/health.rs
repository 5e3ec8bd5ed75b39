//! Probes: alive (the process answers) and ready (the broker and the database answer).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{ApiError, AppState};

pub async fn alive() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.uploads
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("the database does not answer", e))?;
    app.uploads
        .publisher
        .ready()
        .await
        .map_err(|e| ApiError::unavailable("RabbitMQ does not answer", e))?;
    Ok(Json(json!({ "status": "ready" })))
}
