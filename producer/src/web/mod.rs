//! The web app: accepts avatar uploads and orders, answers at once, and shows progress.
//! The only synchronous work is checking and saving an original, or checking a card;
//! everything else is a job.

mod admin;
mod error;
mod health;
mod orders;
mod status;
mod trace;
mod upload;

use std::future::Future;
use std::time::Duration;

use ::orders::Checkout;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use photos::Uploads;
use rabbitmq_jobs::Publisher;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub use self::admin::{Admin, BrokerStats};
pub use self::error::ApiError;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The photo domain's upload use case, with its store, files and how it queues jobs.
    pub uploads: Uploads,
    /// The store domain's order use case, with its store and outbox.
    pub checkout: Checkout,
    /// The publisher the outbox's relay uses, for the readiness probe.
    pub publisher: Publisher,
    /// Largest request body, bytes.
    pub max_upload_bytes: usize,
    /// Longest an upload's body may take to arrive.
    pub body_read_timeout: Duration,
    /// The admin API and dashboard, when `ADMIN_TOKEN` is set.
    pub admin: Option<Admin>,
}

/// The routes, `GET /metrics` among them (Prometheus' text format; the process's recorder
/// is installed on first use), each request counted and timed by its route's pattern and
/// run in its trace (the caller's `traceparent`, or a new one).
pub fn router(state: AppState) -> Router {
    let media = ServeDir::new(state.uploads.storage.public_dir());
    let admin = admin::routes(&state);
    Router::new()
        .route(
            "/users/{user_id}/avatar",
            post(upload::upload_avatar).layer(DefaultBodyLimit::max(state.max_upload_bytes)),
        )
        .route("/users/{user_id}", get(status::user))
        .route("/images/{image_id}", get(status::image))
        .route("/orders", post(orders::place))
        .route("/orders/{order_id}", get(orders::status))
        .route("/products", get(orders::products))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .nest_service("/media", media)
        .merge(admin)
        .merge(observability::metrics_route())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(observability::track_requests))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(trace::continue_trace))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then finishes the requests in flight for
/// at most `shutdown_timeout` (`SHUTDOWN_TIMEOUT`); past it, returns without them.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    shutdown_timeout: Duration,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "listening");
    observability::serve_with_grace(listener, router(state), shutdown, shutdown_timeout).await
}
