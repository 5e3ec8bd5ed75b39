//! The photo app for one spike case: the producer and its workers in containers with the
//! settings compose.yaml ships, on a vhost and a database of their own.

use std::path::Path;
use std::time::Duration;

use support::{Broker, Postgres, wait_until};

use crate::containers::{
    Container, LOG_LEVEL, Volume, WORKER_CPU_SHARES, WORKER_DATABASE_CONNECTIONS,
    WORKER_JOB_CONCURRENCY, direct_url,
};
use crate::processes::free_port;

/// Jobs each upload makes: thumbnails, moderation and the mail, then the profile update.
pub const JOBS_PER_UPLOAD: i64 = 4;

/// A running app.
pub struct Stack {
    pub base: String,
    pub vhost: support::Vhost,
    pub db: sqlx::PgPool,
    pub producer: Container,
    pub workers: Vec<Container>,
    /// The warehouse stand-in the order jobs notify (kept running until the stack is dropped).
    pub _warehouse: Container,
    pub volume: Volume,
}

/// compose.yaml's environment for both apps, pointed at this case's broker and database.
fn app_env(amqp_url: &str, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AMQP_URL", amqp_url.to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("STORAGE_DIR", "/data/storage".to_owned()),
        ("RUST_LOG", LOG_LEVEL.to_owned()),
        ("MAX_UPLOAD_BYTES", "20971520".to_owned()),
        ("MAX_IMAGE_PIXELS", "50000000".to_owned()),
    ]
}

pub async fn start(bin: &Path, broker: &Broker, workers: usize) -> Stack {
    start_with(bin, broker, workers, &[]).await
}

/// [`start`], the producer given `producer_env` besides compose.yaml's settings.
pub async fn start_with(
    bin: &Path,
    broker: &Broker,
    workers: usize,
    producer_env: &[(&'static str, &str)],
) -> Stack {
    let vhost = broker.vhost("spike").await.expect("vhost");
    let postgres = Postgres::shared();
    // Set up as `db-setup` does: the producer and the workers log in as their roles.
    let database = postgres.app_database("spike").await.expect("database");
    let db = sqlx::PgPool::connect(&database.admin_url)
        .await
        .expect("bench db");
    let in_docker = |url: &str| direct_url(url, postgres.container_id(), postgres.port(), 5432);
    let (producer_db, worker_db) = (
        in_docker(&database.producer_url),
        in_docker(&database.worker_url),
    );
    let amqp_url = direct_url(
        &vhost.amqp_url,
        broker.container_id(),
        broker.amqp_port(),
        5672,
    );
    let volume = Volume::create(&format!("bench-spike-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let mut env = app_env(&amqp_url, &producer_db);
    env.push(("HTTP_ADDR", format!("127.0.0.1:{port}")));
    env.extend(producer_env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let producer = Container::run(bin, "producer", &["serve"], &env, &volume, None);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_until(
        Duration::from_secs(60),
        "the producer to be ready",
        || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await
    .expect("producer");
    let warehouse_port = free_port();
    let warehouse_env = [("HTTP_ADDR", format!("127.0.0.1:{warehouse_port}"))];
    let warehouse = Container::run(bin, "warehouse-stub", &[], &warehouse_env, &volume, None);
    let workers = (0..workers)
        .map(|n| {
            let mut env = app_env(&amqp_url, &worker_db);
            env.extend([
                (
                    "WAREHOUSE_URL",
                    format!("http://127.0.0.1:{warehouse_port}"),
                ),
                ("OUTBOX_DIR", "/data/outbox".to_owned()),
                ("BLOCKLIST_FILE", "/etc/photos/blocklist.txt".to_owned()),
                ("WORKER_SHUTDOWN_TIMEOUT", "30s".to_owned()),
                ("JOB_CONCURRENCY", WORKER_JOB_CONCURRENCY.to_owned()),
                (
                    "DATABASE_MAX_CONNECTIONS",
                    WORKER_DATABASE_CONNECTIONS.to_owned(),
                ),
                ("WORKER_NAME", format!("bench-worker-{n}")),
            ]);
            Container::run(bin, "worker", &[], &env, &volume, Some(WORKER_CPU_SHARES))
        })
        .collect();
    Stack {
        base,
        vhost,
        db,
        producer,
        workers,
        _warehouse: warehouse,
        volume,
    }
}

impl Stack {
    pub async fn wait_for_consumers(&self, workers: usize) {
        wait_until(
            Duration::from_secs(60),
            "every worker to consume",
            || async {
                let queues = self
                    .vhost
                    .management
                    .consumed_queues(&self.vhost.name)
                    .await
                    .unwrap_or_default();
                queues
                    .iter()
                    .filter(|q| *q == "jobs.process_thumbnails")
                    .count()
                    >= workers
            },
        )
        .await
        .expect("workers");
    }

    pub async fn thumbnail_backlog(&self) -> u64 {
        let stats = self
            .vhost
            .management
            .queue(&self.vhost.name, "jobs.process_thumbnails")
            .await
            .unwrap_or_default();
        stats.messages_ready + stats.messages_unacknowledged
    }

    /// Jobs of every kind recorded done.
    pub async fn jobs_done(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM image_jobs WHERE state = 'done'")
            .fetch_one(&self.db)
            .await
            .unwrap_or(0)
    }

    /// The largest peak RSS among the workers, MiB.
    pub fn worker_peak_rss(&self) -> f64 {
        self.workers
            .iter()
            .map(Container::peak_rss_mib)
            .fold(0.0, f64::max)
    }
}
