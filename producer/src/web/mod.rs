//! The web app: accepts avatar uploads, answers at once, and shows progress. The only
//! synchronous work is checking and saving the original; everything else is a job.

mod error;
mod health;
mod status;
mod upload;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use shared::Publisher;
use shared::photos::imaging::UploadLimits;
use shared::photos::{LocalStorage, PhotoStore};
use tokio::net::TcpListener;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub use self::error::ApiError;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub publisher: Publisher,
    pub store: PhotoStore,
    pub storage: Arc<LocalStorage>,
    pub limits: UploadLimits,
    /// Largest request body, bytes.
    pub max_upload_bytes: usize,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    let media = ServeDir::new(state.storage.public_dir());
    Router::new()
        .route(
            "/users/{user_id}/avatar",
            post(upload::upload_avatar).layer(DefaultBodyLimit::max(state.max_upload_bytes)),
        )
        .route("/users/{user_id}", get(status::user))
        .route("/images/{image_id}", get(status::image))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .nest_service("/media", media)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
