//! `http_requests_total` and `http_request_duration_seconds`, labelled by method, route and
//! status. The route is the matched pattern (`/images/{image_id}`), never the path: ids in
//! paths would make a new series per request.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use tokio::time::Instant;

const REQUESTS: &str = "http_requests_total";
const DURATION: &str = "http_request_duration_seconds";

/// The route label of a request no route matched (the fallback's 404s, probes of random
/// paths): one series for all of them.
const UNMATCHED: &str = "unmatched";

pub(crate) fn describe() {
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "From a request's arrival to its response's head, by method, route pattern and status"
    );
}

/// Middleware (`axum::middleware::from_fn(track_requests)`, added with `Router::layer` so
/// the matched route is known) counting and timing every request.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    counter!(REQUESTS, &labels).increment(1);
    histogram!(DURATION, &labels).record(started.elapsed());
    response
}

/// The method as a label; a client's made-up methods share one series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
