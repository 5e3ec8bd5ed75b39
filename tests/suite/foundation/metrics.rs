//! Prometheus metrics as a scrape sees them: the worker's outcomes, run times and waits of a
//! kind, the publisher's confirms, the producer's requests by route pattern, and the worker's
//! `/metrics` listener, which ends with the worker.
//!
//! The recorder is one per process and the suite's tests run side by side in it: the job
//! test counts a kind no other test uses, and the HTTP test asserts at least what it caused.

use std::time::Duration;

use rabbitmq_jobs::{
    Job, JobContext, JobError, KindSetting, Publisher, Registry, RetryPolicy, Topology,
    WorkerSettings,
};
use serde::{Deserialize, Serialize};
use support::wait_until;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::{Options, spawn_app as spawn_full_app};
use crate::helpers::{PATIENCE, fast_publishing, spawn_app};

/// This test's own kind: its series are this test's alone.
#[derive(Debug, Serialize, Deserialize)]
struct Metered {
    fail: bool,
}

impl Job for Metered {
    const KIND: &'static str = "metered";
    const VERSION: u32 = 1;
}

#[tokio::test]
async fn a_scrape_shows_each_outcome_run_time_and_wait_of_a_kind() {
    let handle = observability::install();
    let app = spawn_app("metrics-jobs").await;
    let registry = Registry::new().register(|job: Metered, _: JobContext| async move {
        if job.fail {
            Err(JobError::retry("always fails"))
        } else {
            Ok(())
        }
    });
    // Two runs: the first failure is retried, the second dead-lettered.
    let settings = WorkerSettings {
        retry_policies: vec![KindSetting {
            kind: Metered::KIND.to_owned(),
            value: RetryPolicy::new(2, Duration::from_millis(100), Duration::from_millis(100)),
        }],
        ..app.worker_settings("metered")
    };
    let _worker = app.start_worker_with(registry, settings);
    let topology = Topology::new([Metered::KIND]).unwrap();
    let publisher = Publisher::connect(&app.amqp, fast_publishing(), topology, "metrics-jobs")
        .await
        .unwrap();
    publisher.publish(&Metered { fail: false }).await.unwrap();
    publisher.publish(&Metered { fail: true }).await.unwrap();

    // Served as the worker serves it, on a port of its own.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(observability::serve(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let kind = [("kind", Metered::KIND)];
    let outcome = |outcome| [("kind", Metered::KIND), ("outcome", outcome)];
    let settled = wait_until(PATIENCE, "both jobs settled and out of flight", || async {
        let text = scrape(&http, &url).await;
        sample(&text, "jobs_handled_total", &outcome("dead_lettered")) == Some(1.0)
            && sample(&text, "jobs_handled_total", &outcome("succeeded")) == Some(1.0)
            && sample(&text, "jobs_in_flight", &kind) == Some(0.0)
    })
    .await;
    // The kind is this test's alone, and its jobs are settled: the values stay as they are.
    let text = scrape(&http, &url).await;
    settled.unwrap_or_else(|e| panic!("{e}; last scrape:\n{text}"));

    assert_eq!(
        sample(&text, "jobs_published_total", &kind),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "jobs_handled_total", &outcome("retried")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "jobs_handled_total", &outcome("requeued")),
        None
    );
    for histogram in ["job_handler_duration_seconds", "job_queue_wait_seconds"] {
        assert_eq!(
            sample(&text, &format!("{histogram}_count"), &kind),
            Some(3.0),
            "three runs: {text}"
        );
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{text}"
        );
        let bucket = [("kind", Metered::KIND), ("le", "+Inf")];
        assert_eq!(
            sample(&text, &format!("{histogram}_bucket"), &bucket),
            Some(3.0)
        );
    }
    let confirms = sample(&text, "job_publish_confirm_seconds_count", &[]).unwrap_or(0.0);
    assert!(confirms >= 3.0, "two jobs and a retry's copy: {text}");
    // The handle the listener renders is the one every caller installs.
    assert!(
        handle
            .render()
            .contains("jobs_published_total{kind=\"metered\"} 2")
    );

    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, serving)
        .await
        .expect("the metrics listener did not stop")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_producer_counts_requests_by_route_and_the_workers_listener_ends_with_it() {
    let app = spawn_full_app("metrics-http", Options::default()).await;
    let (app, http) = (&app, &app.http);
    let image_id = uuid::Uuid::new_v4();
    let status = |path: String| async move {
        http.get(app.url(&path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("/healthz".into()).await, 200);
    assert_eq!(status(format!("/images/{image_id}")).await, 404);
    assert_eq!(status(format!("/no/such/{image_id}")).await, 404);

    let producer = app.url("/metrics");
    let response = http.get(&producer).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        observability::CONTENT_TYPE
    );
    let text = response.text().await.unwrap();
    let request = |route, status| [("method", "GET"), ("route", route), ("status", status)];
    let healthz = request("/healthz", "200");
    assert!(
        sample(&text, "http_requests_total", &healthz) >= Some(1.0),
        "{text}"
    );
    let image = request("/images/{image_id}", "404");
    assert!(
        sample(&text, "http_requests_total", &image) >= Some(1.0),
        "{text}"
    );
    let unmatched = request("unmatched", "404");
    assert!(
        sample(&text, "http_requests_total", &unmatched) >= Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains(&image_id.to_string()),
        "an id became a label: {text}"
    );
    let healthz_bucket = [("route", "/healthz"), ("le", "+Inf")];
    let bucket = sample(
        &text,
        "http_request_duration_seconds_bucket",
        &healthz_bucket,
    );
    assert!(bucket >= Some(1.0), "{text}");
    // The relay reads the outbox's backlog every few seconds.
    wait_until(PATIENCE, "the outbox gauges", || async {
        let text = scrape(http, &producer).await;
        sample(&text, "outbox_backlog_jobs", &[]).is_some()
            && sample(&text, "outbox_oldest_seconds", &[]).is_some()
    })
    .await
    .unwrap();

    // The worker binary's own listener: up while the worker runs, gone once it stopped.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker_metrics = format!("http://{}/metrics", listener.local_addr().unwrap());
    let cli = worker::Cli {
        kinds: Vec::new(),
        amqp: app.amqp.clone(),
        worker: WorkerSettings {
            name: format!("{}-metrics", app.vhost.name),
            ..WorkerSettings::default()
        },
        publishing: fast_publishing(),
        handlers: app.handlers.clone(),
        metrics_addr: worker::MetricsAddr(None),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(worker::run_with_metrics(cli, Some(listener), async move {
        let _ = stopped.await;
    }));
    let text = scrape(http, &worker_metrics).await;
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the worker did not stop")
        .unwrap()
        .unwrap();
    let after = http.get(&worker_metrics).send().await;
    assert!(after.is_err(), "the metrics listener outlived its worker");
}

/// One scrape's text.
async fn scrape(http: &reqwest::Client, url: &str) -> String {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

/// The value of the series `name` whose labels include `labels` (several: their sum).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let has = |(key, wanted): &(&str, &str)| {
            series_labels
                .split("\",")
                .filter_map(|pair| pair.split_once("=\""))
                .any(|(k, v)| k == *key && v.trim_end_matches('"') == *wanted)
        };
        if series_name == name && labels.iter().all(has) {
            let value: f64 = value.parse().unwrap();
            found = Some(found.unwrap_or(0.0) + value);
        }
    }
    found
}
