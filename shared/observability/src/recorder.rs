//! The process's one Prometheus recorder. A recorder is global per process and can be set
//! only once, while tests start many apps in one process: so it is built and installed once,
//! on first use, and every later caller gets a handle to the same one.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The Prometheus text format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets in seconds, shared by every histogram: from a fast publish confirm or
/// HTTP answer (5 ms) to a slow job (a minute). Explicit buckets render as Prometheus
/// histograms, which aggregate across workers; without them the exporter renders summaries.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often histogram samples are folded in when nobody scrapes, so they do not pile up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder the first time (later calls return the same handle) and describes
/// the job library's and the HTTP metrics. If another recorder was installed already (by
/// something else in the process), this one is not: its handle then renders nothing, and a
/// warning says so.
pub fn install() -> PrometheusHandle {
    HANDLE.get_or_init(build).clone()
}

fn build() -> PrometheusHandle {
    let builder = PrometheusBuilder::new();
    let builder = match builder.set_buckets(BUCKETS) {
        Ok(builder) => builder,
        Err(error) => {
            tracing::warn!(%error, "metrics: histogram buckets refused; rendering summaries");
            PrometheusBuilder::new()
        }
    };
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(error) = metrics::set_global_recorder(recorder) {
        tracing::warn!(%error, "metrics: another recorder is installed; /metrics stays empty");
    }
    rabbitmq_jobs::describe_metrics();
    crate::http::describe();
    spawn_upkeep(handle.clone());
    handle
}

/// Runs the recorder's upkeep on a thread of its own: the recorder outlives any one runtime
/// (tests start and stop many).
fn spawn_upkeep(handle: PrometheusHandle) {
    let upkeep = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = upkeep {
        tracing::warn!(%error, "metrics: no upkeep thread; histograms are folded in at each scrape only");
    }
}

/// `GET /metrics` rendering the process's metrics (the recorder is installed if it is not yet).
pub fn metrics_route<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let handle = install();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()) }
        }),
    )
}
