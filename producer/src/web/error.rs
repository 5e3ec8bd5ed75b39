//! Every error the API answers with: a status and `{"error": "..."}`, never a bare 500 page.

use axum::Json;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rabbitmq_jobs::outbox::OutboxError;
use serde_json::json;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds after which trying again may succeed (`Retry-After`).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and a message for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Too busy right now: try again in `retry_after`.
    pub fn busy(message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after.as_secs().max(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure on our side: logged with its cause, answered without internals.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}; please try again"),
        )
    }

    /// A dependency (broker, database) is down: try again later.
    pub fn unavailable(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, "{context}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{context}; please try again later"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A full outbox is "come back later" with `Retry-After`; anything else is ours.
impl From<OutboxError> for ApiError {
    fn from(error: OutboxError) -> Self {
        match error {
            OutboxError::Full { retry_after, .. } => {
                tracing::warn!(%error, "work refused: the outbox is full");
                ApiError::busy(error.to_string(), retry_after)
            }
            OutboxError::Database(e) => ApiError::unavailable("queueing the jobs failed", e),
            OutboxError::Job(e) => ApiError::internal("queueing the jobs failed", e),
        }
    }
}
