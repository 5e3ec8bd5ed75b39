//! `POST /orders`, `GET /orders/{id}` and `GET /products`: the store's front. Placing an
//! order waits for the card check and the broker's confirms, never for a handler.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders::{CardError, OrderError, OrderRequest, OrderStatus, Product};
use serde_json::json;
use uuid::Uuid;

use super::{ApiError, AppState};

pub async fn place(
    State(app): State<AppState>,
    request: Result<Json<OrderRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    // A body that is not an order is the client's to fix, said in our error shape.
    let Json(request) = request.map_err(|rejection| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, rejection.body_text())
    })?;
    let today = chrono::Utc::now().date_naive();
    let placed = app.checkout.place(&request, today).await?;
    let status_url = format!("/orders/{}", placed.order_id);
    let body = Json(json!({
        "order_id": placed.order_id,
        "total_cents": placed.total_cents,
        "status_url": status_url,
    }));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, status_url)], body).into_response())
}

pub async fn status(
    State(app): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Json<OrderStatus>, ApiError> {
    let order_id: Uuid = order_id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{order_id}` is not an order id")))?;
    app.checkout
        .store
        .order_status(order_id)
        .await
        .map_err(|e| ApiError::unavailable("reading the order failed", e))?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {order_id}")))
}

pub async fn products(State(app): State<AppState>) -> Result<Json<Vec<Product>>, ApiError> {
    app.checkout
        .store
        .products()
        .await
        .map(Json)
        .map_err(|e| ApiError::unavailable("reading the products failed", e))
}

/// The client's input is 422 with what is wrong, a declined card 402; ours are 503.
impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Card(CardError::Declined { .. }) => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, error.to_string())
            }
            OrderError::Invalid(_) | OrderError::Card(_) | OrderError::UnknownProducts(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
            }
            OrderError::Store(e) => ApiError::unavailable("recording the order failed", e),
            OrderError::Queue(e) => ApiError::from(e),
        }
    }
}
