//! The real stack under test: RabbitMQ on fixed host ports (so a `docker restart` keeps
//! them), a fresh PostgreSQL database, shared storage and outbox folders, the `producer`
//! binary, and the supervised `chaos-worker` processes. Dropping it tears everything down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rabbitmq_jobs::{AmqpSettings, Publisher, PublisherSettings, Topology};
use sqlx::PgPool;
use support::{Postgres, chaos, wait_until};
use tokio::process::Child;

use crate::brokers::Brokers;
use crate::procs::{self, Spec};
use crate::profile::Profile;
use crate::workers::Workers;

/// Jobs of each kind a worker runs at once (`WORKER_CONCURRENCY`), and so its prefetch.
pub const CONCURRENCY: u64 = 4;

/// Where the sibling binaries and the run's logs are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The folder of this binary, `producer` and `chaos-worker`.
    pub bin_dir: PathBuf,
    /// `target/chaos/<run>/`: one log per process.
    pub run_dir: PathBuf,
}

/// A folder removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything running. Fields drop in order: workers, producer, then the broker container.
pub struct Stack {
    pub workers: Workers,
    _producer: Child,
    pub broker: Brokers,
    pub publisher: Publisher,
    pub pool: PgPool,
    pub amqp_url: String,
    pub base: String,
    pub http: reqwest::Client,
    pub outbox: PathBuf,
    pub postgres_version: String,
    _data: TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    support::free_port().context("finding a free port")
}

impl Stack {
    /// Starts the broker, the database, the producer and the workers, and waits until all
    /// are ready.
    pub async fn start(profile: &Profile, paths: &Paths) -> anyhow::Result<Self> {
        let (amqp_port, ui_port, http_port) = (free_port()?, free_port()?, free_port()?);
        let broker = Brokers::start(profile.cluster, amqp_port, ui_port).await?;
        let amqp_url = broker.amqp_url();
        // Set up as `db-setup` does: the producer and the workers log in as their roles.
        let database = tokio::task::spawn_blocking(Postgres::shared)
            .await?
            .app_database("chaos")
            .await
            .map_err(|e| anyhow!(e))?;
        let pool = chaos::connect(&database.admin_url, 8).await?;
        chaos::create_tables(&pool).await?;
        chaos::grant_to(&pool, &database.roles.worker.role).await?;
        let postgres_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        let data = TempDir(std::env::temp_dir().join(format!(
            "chaos-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        )));
        let (storage, outbox) = (data.0.join("storage"), data.0.join("outbox"));
        std::fs::create_dir_all(&outbox).context("creating the outbox")?;
        let common = vec![
            ("AMQP_URL".to_owned(), amqp_url.clone()),
            ("STORAGE_DIR".to_owned(), storage.display().to_string()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        let base = format!("http://127.0.0.1:{http_port}");
        let mut producer_env = common.clone();
        producer_env.push(("DATABASE_URL".to_owned(), database.producer_url.clone()));
        let producer = start_producer(paths, &producer_env, http_port)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        wait_until(Duration::from_secs(120), "the producer to be ready", || {
            let request = http.get(format!("{base}/readyz")).send();
            async move { request.await.is_ok_and(|r| r.status() == 200) }
        })
        .await
        .map_err(|e| anyhow!("{e} (see {})", paths.run_dir.display()))?;
        let mut worker_env = common;
        worker_env.push(("DATABASE_URL".to_owned(), database.worker_url.clone()));
        let workers = Workers::start(worker_specs(profile, paths, &worker_env, &outbox));
        let amqp = AmqpSettings::from_url(&amqp_url).map_err(|e| anyhow!(e))?;
        let topology = Topology::new(chaos::KINDS)?;
        let publisher =
            Publisher::connect(&amqp, PublisherSettings::default(), topology, "chaos").await?;
        let stack = Self {
            workers,
            _producer: producer,
            broker,
            publisher,
            pool,
            amqp_url,
            base,
            http,
            outbox,
            postgres_version,
            _data: data,
        };
        stack.wait_for_consumers(Duration::from_secs(120)).await?;
        Ok(stack)
    }

    /// The management API.
    pub fn management(&self) -> &support::Management {
        self.broker.management()
    }

    /// Waits until every worker's consumer connection is open, as the broker itself sees.
    pub async fn wait_for_consumers(&self, patience: Duration) -> anyhow::Result<()> {
        let wanted: Vec<String> = self
            .workers
            .names()
            .iter()
            .map(|n| format!("{n} consumer"))
            .collect();
        wait_until(patience, "every worker's consumer connection", || async {
            crate::broker_view::connection_names(self)
                .await
                .is_ok_and(|open| wanted.iter().all(|w| open.contains(w)))
        })
        .await
        .map_err(|e| anyhow!(e))
    }

    /// Runs `rabbitmqctl` in the broker's container, with a deadline.
    pub async fn rabbitmqctl(&self, args: &[&str]) -> anyhow::Result<String> {
        tokio::time::timeout(Duration::from_secs(60), self.broker.rabbitmqctl(args))
            .await
            .map_err(|_| anyhow!("rabbitmqctl {args:?} took over 60 s"))?
            .map_err(|e| anyhow!(e))
    }
}

/// A plain connection named `name` to the broker, or to the first node of a cluster that
/// answers.
pub async fn connect(amqp_url: &str, name: &str) -> anyhow::Result<lapin::Connection> {
    let amqp = AmqpSettings::from_url(amqp_url).map_err(|e| anyhow!(e))?;
    Ok(amqp.connect(name).await?)
}

fn start_producer(
    paths: &Paths,
    common: &[(String, String)],
    http_port: u16,
) -> anyhow::Result<Child> {
    let mut env = common.to_vec();
    env.push(("HTTP_ADDR".to_owned(), format!("127.0.0.1:{http_port}")));
    procs::spawn(&Spec {
        program: paths.bin_dir.join("producer"),
        args: vec!["serve".to_owned()],
        env,
        log: paths.run_dir.join("producer.log"),
    })
}

fn worker_specs(
    profile: &Profile,
    paths: &Paths,
    common: &[(String, String)],
    outbox: &Path,
) -> Vec<(String, Spec)> {
    profile
        .worker_names()
        .into_iter()
        .map(|name| {
            let mut env = common.to_vec();
            env.extend(
                [
                    ("WORKER_NAME", name.as_str()),
                    ("OUTBOX_DIR", &outbox.display().to_string()),
                    // A frozen worker is dropped by the broker within seconds.
                    ("AMQP_HEARTBEAT", "2"),
                    // Settings of the coming runtime; ignored until it lands.
                    ("WORKER_MAX_CRASHES", "3"),
                    ("MAX_MESSAGE_SIZE", "1048576"),
                    ("RETRY_POLICIES", "chaos_panic=3:100ms:1s"),
                    ("DATABASE_MAX_CONNECTIONS", "6"),
                    ("WORKER_CONCURRENCY", &CONCURRENCY.to_string()),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
            let spec = Spec {
                program: paths.bin_dir.join("chaos-worker"),
                args: Vec::new(),
                env,
                log: paths.run_dir.join(format!("{name}.log")),
            };
            (name, spec)
        })
        .collect()
}
