//! A stand-in for the warehouse's API, so the order flow runs on a fresh clone: it takes
//! `POST /shipments` notices, logs each, and de-duplicates them by `Idempotency-Key` (a
//! repeated notice is answered 200 and shipped once). `GET /shipments` lists what arrived,
//! with how often each was delivered. It keeps everything in memory.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One shipment as received.
#[derive(Debug, Clone, Serialize)]
pub struct Shipment {
    /// The notice's idempotency key.
    pub key: String,
    /// The first notice's body.
    pub notice: Value,
    /// How many times it was sent.
    pub deliveries: u32,
}

type Received = Arc<Mutex<BTreeMap<String, Shipment>>>;

/// The stand-in's routes.
pub fn router() -> Router {
    Router::new()
        .route("/shipments", get(list).post(receive))
        .with_state(Received::default())
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "warehouse stand-in listening");
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    notice: Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| !key.is_empty())
    else {
        let error = json!({ "error": "an Idempotency-Key header is required" });
        return (StatusCode::BAD_REQUEST, Json(error));
    };
    let mut shipments = received.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(shipment) = shipments.get_mut(key) {
        shipment.deliveries = shipment.deliveries.saturating_add(1);
        tracing::info!(
            key,
            deliveries = shipment.deliveries,
            "duplicate notice; already shipping"
        );
        return (StatusCode::OK, Json(json!({ "status": "duplicate" })));
    }
    tracing::info!(key, notice = %notice.0, "shipping");
    let shipment = Shipment {
        key: key.to_owned(),
        notice: notice.0,
        deliveries: 1,
    };
    shipments.insert(key.to_owned(), shipment);
    (StatusCode::CREATED, Json(json!({ "status": "shipping" })))
}

async fn list(State(received): State<Received>) -> Json<Vec<Shipment>> {
    let shipments = received.lock().unwrap_or_else(PoisonError::into_inner);
    Json(shipments.values().cloned().collect())
}
