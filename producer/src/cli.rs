//! The producer's command line; every flag can also come from its environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use dbkit::{DatabaseRoles, DatabaseSettings, Login};
use photos::PhotoSettings;
use rabbitmq_jobs::outbox::OutboxSettings;
use rabbitmq_jobs::{AmqpSettings, Nodes, PublisherSettings, parse_duration};

/// The web front of the photo app and the store (`serve`), the one-shot set-ups, and a tool
/// to publish jobs by hand (`publish`).
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub publishing: PublisherSettings,
    #[command(flatten)]
    pub admin: AdminSettings,
}

/// Who may operate the job system: the admin API and dashboard, and dead-letter tooling.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdminSettings {
    /// Token for the admin API and dashboard under `/admin` (sent as `Authorization: Bearer
    /// <token>`), at least 16 characters; unset, they are off.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, value_parser = admin_token)]
    pub admin_token: Option<String>,
    /// RabbitMQ URL(s) for dead-letter operations, whose user may read the dead-letter
    /// queues and publish to `jobs` (the producer's own user may not); default: AMQP_URL.
    #[arg(long, env = "ADMIN_AMQP_URL", hide_env_values = true, value_parser = Nodes::parse)]
    pub admin_amqp_url: Option<Nodes>,
    /// RabbitMQ's management API, with a user allowed to read the app's vhost, e.g.
    /// `http://admin:secret@rabbitmq:15672`: the dashboard's queue depths and rates.
    #[arg(long, env = "RABBITMQ_MANAGEMENT_URL", hide_env_values = true)]
    pub management_url: Option<String>,
}

impl AdminSettings {
    /// `amqp` with the admin URL in place of the app's, if one is set.
    #[must_use]
    pub fn amqp(&self, amqp: &AmqpSettings) -> AmqpSettings {
        let mut admin = amqp.clone();
        if let Some(nodes) = &self.admin_amqp_url {
            admin.nodes = nodes.clone();
        }
        admin
    }
}

fn admin_token(text: &str) -> Result<String, String> {
    if text.chars().count() < 16 {
        return Err("the admin token must be at least 16 characters".into());
    }
    Ok(text.to_owned())
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the web app: uploads, orders, status, profiles, products, media.
    Serve(ServeSettings),
    /// Print a RabbitMQ definitions file (topology, users, least-privilege permissions) for
    /// the broker to import at boot; then run the apps with `TOPOLOGY=verify`.
    BrokerDefinitions(DefinitionsSettings),
    /// Migrate the database as its owner role and give the producer and the workers roles
    /// with only the rights they use; then exits. Run it before the apps, at every upgrade.
    DbSetup(DatabaseSetupSettings),
    /// Failed jobs: list them, show one, replay them to their work queues, or purge them.
    #[command(subcommand)]
    DeadLetters(DeadLetterAction),
    /// Publish jobs of one kind and print their ids, one per line.
    Publish {
        /// The job kind, e.g. `process_thumbnails`.
        kind: String,
        /// The job's payload as JSON, checked against the kind's type.
        #[arg(long)]
        payload: String,
        /// How many copies to publish (each gets its own id).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
    },
}

/// What `dead-letters` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DeadLetterAction {
    /// Per kind: how many dead letters, the oldest failure, the commonest reasons.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter: its envelope and every header, as JSON.
    Show {
        /// The job's id.
        id: String,
    },
    /// Send dead letters back to their work queues with their attempts reset; each copy is
    /// confirmed by the broker before its dead letter is removed.
    Replay(Selection),
    /// Drop dead letters for good.
    Purge {
        #[command(flatten)]
        selection: Selection,
        /// Yes, drop them.
        #[arg(long)]
        yes: bool,
    },
}

/// Which dead letters `replay` or `purge` takes (all of the given conditions).
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// One job, by id.
    #[arg(long)]
    pub id: Option<String>,
    /// One kind's dead letters.
    #[arg(long)]
    pub kind: Option<String>,
    /// Dead letters whose reason contains this text.
    #[arg(long)]
    pub reason: Option<String>,
    /// Dead letters whose body contains this text (e.g. an image or order id).
    #[arg(long)]
    pub body: Option<String>,
    /// Every dead letter (when no other condition is given).
    #[arg(long)]
    pub all: bool,
}

/// Who may use the broker, for `broker-definitions`.
#[derive(Debug, Clone, clap::Args)]
pub struct DefinitionsSettings {
    /// Write here instead of to standard output.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    /// The vhost the app uses.
    #[arg(long, env = "RABBITMQ_VHOST", default_value = "/")]
    pub vhost: String,
    /// The administrator (management UI).
    #[arg(long, env = "RABBITMQ_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,
    #[arg(long, env = "RABBITMQ_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    /// The producer's user: may only publish to `jobs`.
    #[arg(long, env = "RABBITMQ_PRODUCER_USER", default_value = "producer")]
    pub producer_user: String,
    #[arg(long, env = "RABBITMQ_PRODUCER_PASSWORD", hide_env_values = true)]
    pub producer_password: String,
    /// The workers' user: may read the work queues and publish retries and dead letters.
    #[arg(long, env = "RABBITMQ_WORKER_USER", default_value = "worker")]
    pub worker_user: String,
    #[arg(long, env = "RABBITMQ_WORKER_PASSWORD", hide_env_values = true)]
    pub worker_password: String,
}

/// Who owns the database and who each app logs in as, for `db-setup`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSetupSettings {
    /// PostgreSQL URL of a superuser (the image's `POSTGRES_USER`) or of a role with
    /// `CREATEROLE` that owns the database; only this step uses it.
    #[arg(long, env = "DATABASE_ADMIN_URL", hide_env_values = true)]
    pub admin_url: String,
    /// The role that owns the schema; nobody logs in as it.
    #[arg(long, env = "DATABASE_OWNER_ROLE", default_value = "photos_owner")]
    pub owner_role: String,
    /// The producer's role (its `DATABASE_URL`'s user).
    #[arg(
        long,
        env = "DATABASE_PRODUCER_ROLE",
        default_value = "photos_producer"
    )]
    pub producer_role: String,
    #[arg(long, env = "DATABASE_PRODUCER_PASSWORD", hide_env_values = true)]
    pub producer_password: String,
    /// The workers' role (their `DATABASE_URL`'s user).
    #[arg(long, env = "DATABASE_WORKER_ROLE", default_value = "photos_worker")]
    pub worker_role: String,
    #[arg(long, env = "DATABASE_WORKER_PASSWORD", hide_env_values = true)]
    pub worker_password: String,
    /// Longest one attempt at the whole set-up may take (migrations included); an attempt
    /// that fails because the database is not up yet is repeated.
    #[arg(long, env = "DATABASE_SETUP_TIMEOUT", default_value = "60s", value_parser = positive_duration)]
    pub timeout: Duration,
}

impl DatabaseSetupSettings {
    /// The roles these settings name.
    #[must_use]
    pub fn roles(&self) -> DatabaseRoles {
        DatabaseRoles {
            owner: self.owner_role.clone(),
            producer: Login {
                role: self.producer_role.clone(),
                password: self.producer_password.clone(),
            },
            worker: Login {
                role: self.worker_role.clone(),
                password: self.worker_password.clone(),
            },
        }
    }
}

/// The web app's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeSettings {
    /// Address to listen on.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Largest upload, bytes; larger ones get 413.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 20 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub max_upload_bytes: u64,
    /// Longest an upload's body may take to arrive; a client that stalls gets 408.
    #[arg(long, env = "BODY_READ_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub body_read_timeout: Duration,
    /// Longest an upload waits for room in the decode memory budget (DECODE_MEMORY_MIB);
    /// past it the upload gets 503 with `Retry-After`.
    #[arg(long, env = "DECODE_WAIT", default_value = "2s", value_parser = positive_duration)]
    pub decode_wait: Duration,
    /// Longest a graceful shutdown waits for requests in flight; then the process exits
    /// without them.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub shutdown_timeout: Duration,
    /// How an upload's jobs reach the broker: `outbox` (written with the upload in one
    /// transaction, published by the relay: uploads are taken while the broker is away) or
    /// `direct` (published before answering; 503 while the broker is away). Orders always
    /// use the outbox.
    #[arg(long, env = "JOB_DELIVERY", value_enum, default_value_t = JobDelivery::Outbox)]
    pub job_delivery: JobDelivery,
    #[command(flatten)]
    pub outbox: OutboxSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub photos: PhotoSettings,
}

/// How an upload's jobs reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JobDelivery {
    /// The transactional outbox (the default).
    Outbox,
    /// Straight to the broker, before answering.
    Direct,
}

/// A duration above zero (a zero bound would refuse every upload, or every request in flight).
fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(duration)
}
