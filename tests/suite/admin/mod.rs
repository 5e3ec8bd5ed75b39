//! The operator's side: the admin API behind its token, the dead-letter command line, and
//! the dashboard in a real browser.

mod api;
mod dashboard;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::post;

/// A warehouse that refuses notices (422) until `accept` is raised, then takes them.
fn warehouse_refusing_until(accept: Arc<Mutex<bool>>) -> axum::Router {
    axum::Router::new().route(
        "/shipments",
        post(move || {
            let accept = Arc::clone(&accept);
            async move {
                if *accept.lock().unwrap() {
                    StatusCode::CREATED
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
            }
        }),
    )
}
