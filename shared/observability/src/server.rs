//! `/metrics` on a listener of its own, for a process without a web app: it answers until
//! told to stop, then finishes the scrapes under way, for a bounded time.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::recorder::metrics_route;

/// The longest a scrape under way may hold the listener's end.
const GRACE: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` (installing the recorder if needed) until `shutdown`
/// resolves, then lets scrapes under way finish, for at most five seconds.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "serving /metrics");
    let (signalled, on_signal) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = signalled.send(());
    };
    let server = axum::serve(listener, metrics_route::<()>())
        .with_graceful_shutdown(signal)
        .into_future();
    let grace_over = async {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(GRACE).await,
            // The server ended without a signal; its own result is on its way.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served,
        () = grace_over => {
            tracing::debug!("a scrape outlived the metrics listener's grace; dropped");
            Ok(())
        }
    }
}
