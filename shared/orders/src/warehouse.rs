//! The warehouse's HTTP API, as the `notify_warehouse` job calls it: one POST per order,
//! with an idempotency key, so a repeated call (a redelivered job, a retry after a timeout
//! whose request did arrive) ships nothing twice.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::OrderLine;

/// A warehouse reached over HTTP.
#[derive(Debug, Clone)]
pub struct Warehouse {
    client: reqwest::Client,
    shipments_url: String,
}

/// Why the warehouse did not take a notice.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// It answered 4xx: it will not take this notice as it is (permanent).
    #[error("the warehouse refused the order: {status} {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// It could not be reached, did not answer in time, or answered 5xx (try again).
    #[error("the warehouse is unavailable: {0}")]
    Unavailable(String),
}

/// The notice's body.
#[derive(Debug, Serialize)]
struct Shipment<'a> {
    order_id: Uuid,
    items: &'a [OrderLine],
}

impl Warehouse {
    /// A client for the warehouse at `base_url` (its shipments are `{base_url}/shipments`);
    /// each call may take at most `timeout`, connecting included.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            shipments_url: format!("{}/shipments", base_url.trim_end_matches('/')),
        })
    }

    /// The key the warehouse de-duplicates by: one per order.
    #[must_use]
    pub fn idempotency_key(order_id: Uuid) -> String {
        format!("order-{order_id}")
    }

    /// Asks the warehouse to ship the order's items.
    #[tracing::instrument(skip(self, items))]
    pub async fn notify(&self, order_id: Uuid, items: &[OrderLine]) -> Result<(), WarehouseError> {
        let response = self
            .client
            .post(&self.shipments_url)
            .header("Idempotency-Key", Self::idempotency_key(order_id))
            .json(&Shipment { order_id, items })
            .send()
            .await
            .map_err(|e| WarehouseError::Unavailable(without_url(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(body.floor_char_boundary(200));
        // A 408 or 429 is about the moment, not the notice: it is tried again.
        let momentary = [
            reqwest::StatusCode::REQUEST_TIMEOUT,
            reqwest::StatusCode::TOO_MANY_REQUESTS,
        ];
        if status.is_client_error() && !momentary.contains(&status) {
            Err(WarehouseError::Refused {
                status: status.as_u16(),
                body,
            })
        } else {
            Err(WarehouseError::Unavailable(format!("{status} {body}")))
        }
    }
}

/// The error without the URL (which may hold credentials), with its causes.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "WAREHOUSE_URL");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
