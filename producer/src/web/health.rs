//! Probes: alive (the process answers) and ready (it can take work: the database answers,
//! and the broker too where uploads publish directly; with the outbox a broker that is away
//! only delays jobs, so it is reported, not failed on).

use axum::Json;
use axum::extract::State;
use photos::Queueing;
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
    let broker = app.publisher.ready().await;
    if let (Queueing::Direct(_), Err(error)) = (&app.uploads.queueing, &broker) {
        return Err(ApiError::unavailable("RabbitMQ does not answer", error));
    }
    let broker = match broker {
        Ok(()) => "up".to_owned(),
        Err(error) => format!("unreachable ({error}); jobs wait in the outbox"),
    };
    Ok(Json(json!({ "status": "ready", "broker": broker })))
}
