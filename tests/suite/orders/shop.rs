//! What the order tests share: placing orders and reading them back over HTTP, the
//! products' stock, and a warehouse listening on a free port.

use orders::{JobState, OrderState, OrderStatus, Product};
use serde_json::{Value, json};
use support::wait_until;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::app::App;
use crate::helpers::{PATIENCE, messages_ready};

/// A card the stand-in provider approves.
pub const GOOD_CARD: &str = "4242 4242 4242 4242";

/// An order request for `items` (`(sku, quantity)`) paid with `card`.
pub fn order_body(items: &[(&str, u32)], card: &str) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, quantity)| json!({ "sku": sku, "quantity": quantity }))
        .collect();
    json!({
        "email": "ada@example.com",
        "items": items,
        "card": { "number": card, "exp_month": 12, "exp_year": 2099 },
    })
}

impl App {
    /// `POST /orders` with `body`.
    pub async fn post_order(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/orders"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Places an order for `items` with a good card and expects 202; returns its id.
    pub async fn placed_order(&self, items: &[(&str, u32)]) -> Uuid {
        let response = self.post_order(&order_body(items, GOOD_CARD)).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status_url"], location.as_str());
        body["order_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn order(&self, order_id: Uuid) -> OrderStatus {
        let response = self
            .http
            .get(self.url(&format!("/orders/{order_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until the order is in `state`; the last status if it never was.
    pub async fn wait_for_order(&self, order_id: Uuid, state: OrderState) -> OrderStatus {
        let what = format!("order {order_id} to be {state:?}");
        let waited = wait_until(PATIENCE, &what, || async {
            self.order(order_id).await.state == state
        })
        .await;
        let status = self.order(order_id).await;
        if let Err(error) = waited {
            panic!("{error}; last status: {status:#?}");
        }
        status
    }

    /// Jobs of `kind` waiting in its queue, straight from the broker.
    pub async fn ready(&self, kind: &str) -> u32 {
        let connection = lapin::Connection::connect(
            &self.vhost.amqp_url,
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        messages_ready(&channel, &rabbitmq_jobs::work_queue(kind)).await
    }

    /// Waits until the order's `kind` job is in `state`.
    pub async fn wait_for_job(&self, order_id: Uuid, kind: &str, state: JobState) -> OrderStatus {
        let what = format!("the {kind} job of order {order_id} to be {state:?}");
        wait_until(PATIENCE, &what, || async {
            self.order(order_id).await.jobs[kind].state == state
        })
        .await
        .unwrap();
        self.order(order_id).await
    }

    /// The stock of `sku`, from `GET /products`.
    pub async fn stock(&self, sku: &str) -> i32 {
        let response = self.http.get(self.url("/products")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let products: Vec<Product> = response.json().await.unwrap();
        products
            .into_iter()
            .find(|product| product.sku == sku)
            .unwrap_or_else(|| panic!("no product {sku}"))
            .stock
    }
}

/// An HTTP server on a free port, stopped when dropped.
pub struct Served {
    pub url: String,
    _stop: oneshot::Sender<()>,
}

/// Serves `router` on a free port of this machine.
pub async fn serve(router: axum::Router) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
    });
    Served { url, _stop: stop }
}

/// The shipments the project's warehouse stand-in at `url` received.
pub async fn shipments(url: &str) -> Vec<Value> {
    reqwest::get(format!("{url}/shipments"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
