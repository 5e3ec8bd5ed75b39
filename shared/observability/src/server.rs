//! Serving with a bounded goodbye: until told to stop, then the requests under way finish,
//! for a bounded time. The producer's web app and the worker's `/metrics` listener share it.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::recorder::metrics_route;

/// The longest a scrape under way may hold the metrics listener's end.
const METRICS_GRACE: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` (installing the recorder if needed) until `shutdown`
/// resolves, then lets scrapes under way finish, for at most five seconds.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "serving /metrics");
    serve_with_grace(listener, metrics_route::<()>(), shutdown, METRICS_GRACE).await
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the requests in
/// flight for at most `grace`. Past it, this returns without them: a client holding a
/// request open cannot hold the process, which ends their connections as it exits.
pub async fn serve_with_grace(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (signalled, on_signal) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = signalled.send(());
    };
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .into_future();
    let grace_over = async {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server ended without a signal; its own result is on its way.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served,
        () = grace_over => {
            tracing::warn!(?grace, "requests still in flight after the shutdown grace; no longer waiting for them");
            Ok(())
        }
    }
}
