//! The operator's side of the web app under `/admin`: a dashboard page and the JSON API it
//! uses (queue depths and rates, dead letters, replay, purge). Off unless `ADMIN_TOKEN` is
//! set; every API call must carry it as `Authorization: Bearer <token>`. Never on the
//! public upload routes.

mod api;
mod broker_stats;

use std::fmt;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use rabbitmq_jobs::DeadLetters;
use sha2::{Digest, Sha256};

pub use self::broker_stats::BrokerStats;
use super::{ApiError, AppState};

/// The dashboard: one static page, no build step.
const DASHBOARD: &str = include_str!("dashboard.html");

/// What the admin routes need.
#[derive(Clone)]
pub struct Admin {
    /// SHA-256 of the token: compared digest to digest, so the time taken tells nothing of
    /// how much of a guess was right.
    token_digest: [u8; 32],
    /// The dead-letter queues, over a connection allowed to read them.
    pub dead_letters: DeadLetters,
    /// Queue depths and rates from the management API, when `RABBITMQ_MANAGEMENT_URL` is set.
    pub broker_stats: Option<BrokerStats>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("broker_stats", &self.broker_stats)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Admin routes for `token`.
    #[must_use]
    pub fn new(token: &str, dead_letters: DeadLetters, broker_stats: Option<BrokerStats>) -> Self {
        Self {
            token_digest: Sha256::digest(token.as_bytes()).into(),
            dead_letters,
            broker_stats,
        }
    }

    fn admits(&self, token: &str) -> bool {
        <[u8; 32]>::from(Sha256::digest(token.as_bytes())) == self.token_digest
    }
}

/// The admin routes, when the app has an admin token; none otherwise.
pub fn routes(state: &AppState) -> Router<AppState> {
    if state.admin.is_none() {
        return Router::new();
    }
    let api = Router::new()
        .route("/overview", get(api::overview))
        .route("/dead-letters", get(api::summary))
        .route("/dead-letters/list", get(api::list))
        .route("/dead-letters/replay", post(api::replay))
        .route("/dead-letters/purge", post(api::purge))
        .route("/dead-letters/{id}", get(api::show))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorised));
    Router::new()
        .route("/admin", get(|| async { Html(DASHBOARD) }))
        .nest("/admin/api", api)
}

/// Lets through requests that carry the admin token.
async fn authorised(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match (app.admin.as_ref(), token) {
        (Some(admin), Some(token)) if admin.admits(token) => next.run(request).await,
        _ => axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "the admin API needs `Authorization: Bearer <ADMIN_TOKEN>`",
        )),
    }
}
