//! The admin API's handlers: JSON in, JSON out, every failure an [`ApiError`].

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use rabbitmq_jobs::{DeadLetter, DeadLetterError, DeadLetters, Filter, KindSummary, Replayed};
use serde::Deserialize;
use serde_json::{Value, json};

use super::broker_stats::Overview;
use crate::web::{ApiError, AppState};

/// Dead letters read per kind for a summary's oldest failure and top reasons: the dashboard
/// asks every two seconds, and each one read is a round trip.
const SUMMARY_READ: usize = 200;
/// Most dead letters one `list` call returns.
const RECENT_MAX: usize = 200;

fn dead_letters(app: &AppState) -> Result<&DeadLetters, ApiError> {
    app.admin
        .as_ref()
        .map(|admin| &admin.dead_letters)
        .ok_or_else(|| ApiError::not_found("the admin API is off"))
}

fn failed(error: DeadLetterError) -> ApiError {
    match error {
        DeadLetterError::UnknownKind(_) => ApiError::bad_request(error.to_string()),
        error => ApiError::unavailable("reading the dead letters failed", error),
    }
}

/// `GET /admin/api/overview`: every kind's queues, with rates.
pub async fn overview(State(app): State<AppState>) -> Result<Json<Overview>, ApiError> {
    let admin = app.admin.as_ref();
    let (stats, kinds) = admin
        .and_then(|admin| Some((admin.broker_stats.as_ref()?, admin.dead_letters.kinds())))
        .ok_or_else(|| {
            ApiError::not_found("queue depths and rates need RABBITMQ_MANAGEMENT_URL")
        })?;
    let mut overview = stats
        .overview(kinds)
        .await
        .map_err(|e| ApiError::unavailable("reading the queues from the management API", e))?;
    let retrying = retrying_by_kind(&app).await?;
    for queues in &mut overview.kinds {
        queues.retrying = retrying.get(&queues.kind).copied().unwrap_or(0);
    }
    Ok(Json(overview))
}

/// Every domain's jobs waiting for their next attempt, by kind.
async fn retrying_by_kind(app: &AppState) -> Result<HashMap<String, i64>, ApiError> {
    let failed = |e| ApiError::unavailable("counting the retrying jobs", e);
    let photos = app.uploads.store.jobs_retrying().await.map_err(failed)?;
    let orders = app.checkout.store.jobs_retrying().await.map_err(failed)?;
    Ok(photos.into_iter().chain(orders).collect())
}

/// `GET /admin/api/dead-letters`: per kind, count, oldest failure, top reasons.
pub async fn summary(State(app): State<AppState>) -> Result<Json<Vec<KindSummary>>, ApiError> {
    let summary = dead_letters(&app)?.summary(SUMMARY_READ).await;
    summary.map(Json).map_err(failed)
}

/// Query of `list`: a filter and how many.
#[derive(Debug, Deserialize)]
pub struct Listing {
    #[serde(flatten)]
    filter: Filter,
    limit: Option<usize>,
}

/// `GET /admin/api/dead-letters/list?kind=&reason=&body=&limit=`: oldest first (queue
/// order), as far as `limit`.
pub async fn list(
    State(app): State<AppState>,
    Query(query): Query<Listing>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let limit = query.limit.unwrap_or(50).min(RECENT_MAX);
    let letters = dead_letters(&app)?.list(&query.filter, limit).await;
    letters.map(Json).map_err(failed)
}

/// `GET /admin/api/dead-letters/{id}`.
pub async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetter>, ApiError> {
    let letter = dead_letters(&app)?.show(&id).await.map_err(failed)?;
    letter
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no dead letter of job {id}")))
}

/// Body of `replay` and `purge`: a filter, and `all` to act on every dead letter.
#[derive(Debug, Deserialize)]
pub struct Selection {
    #[serde(flatten)]
    filter: Filter,
    #[serde(default)]
    all: bool,
}

impl Selection {
    fn filter(self) -> Result<Filter, ApiError> {
        if !self.all && self.filter.is_empty() {
            return Err(ApiError::bad_request(
                "say which dead letters: `id`, `kind`, `reason`, or `\"all\": true`",
            ));
        }
        Ok(self.filter)
    }
}

/// `POST /admin/api/dead-letters/replay`.
pub async fn replay(
    State(app): State<AppState>,
    Json(selection): Json<Selection>,
) -> Result<Json<Replayed>, ApiError> {
    let filter = selection.filter()?;
    let replayed = dead_letters(&app)?.replay(&filter).await;
    replayed.map(Json).map_err(failed)
}

/// `POST /admin/api/dead-letters/purge`.
pub async fn purge(
    State(app): State<AppState>,
    Json(selection): Json<Selection>,
) -> Result<Json<Value>, ApiError> {
    let filter = selection.filter()?;
    let purged = dead_letters(&app)?.purge(&filter).await.map_err(failed)?;
    Ok(Json(json!({ "purged": purged })))
}
