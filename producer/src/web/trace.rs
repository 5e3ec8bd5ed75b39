//! Each request in a trace: the caller's W3C `traceparent` continued, or a new trace, so the
//! request's log lines and every job it queues (and their workers' lines) share a trace id.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use rabbitmq_jobs::{TRACEPARENT, TraceContext};
use tracing::Instrument;

/// Middleware (`axum::middleware::from_fn(continue_trace)`, outermost): runs the request in
/// its trace, inside a span that names the trace id.
pub(super) async fn continue_trace(request: Request, next: Next) -> Response {
    let trace = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::new_root, |parent| parent.child());
    let span = tracing::info_span!("http", trace_id = %trace.trace_id());
    trace.scope(next.run(request)).instrument(span).await
}
