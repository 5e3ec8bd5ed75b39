//! The worker's command line; every flag can also come from its environment variable.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use dbkit::DatabaseSettings;
use orders::WarehouseSettings;
use photos::PhotoSettings;
use rabbitmq_jobs::{AmqpSettings, PublisherSettings, WorkerSettings};

/// Consumes the photo app's and the store's jobs from RabbitMQ and runs their handlers.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    /// The kinds to consume, comma-separated (default: all).
    #[arg(long, env = "WORKER_KINDS", value_delimiter = ',')]
    pub kinds: Vec<String>,
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub publishing: PublisherSettings,
    #[command(flatten)]
    pub handlers: HandlerSettings,
    /// Where to serve `GET /metrics` (Prometheus), e.g. `0.0.0.0:9090`; `off` or empty:
    /// nowhere. Off unless set: several workers may run on one host.
    #[arg(long, env = "METRICS_ADDR", default_value = "off",
          value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,
}

/// The metrics listener's address, if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

fn parse_metrics_addr(value: &str) -> Result<MetricsAddr, String> {
    match value.trim() {
        "" | "off" => Ok(MetricsAddr(None)),
        address => address
            .parse()
            .map(|address| MetricsAddr(Some(address)))
            .map_err(|e| format!("`{address}` is not an address and port, nor `off`: {e}")),
    }
}

/// What every domain's handlers need.
#[derive(Debug, Clone, clap::Args)]
pub struct HandlerSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub mail: MailSettings,
    #[command(flatten)]
    pub pipeline: PipelineSettings,
    #[command(flatten)]
    pub orders: OrderSettings,
}

/// How mail goes out, for every domain.
#[derive(Debug, Clone, clap::Args)]
pub struct MailSettings {
    /// SMTP server for confirmation mail, e.g. `smtp://user:pass@mail:587?tls=required`.
    /// Unset: mail is written to OUTBOX_DIR instead.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Folder of `.eml` files when no SMTP server is set.
    #[arg(long, env = "OUTBOX_DIR", default_value = "./outbox")]
    pub outbox_dir: PathBuf,
    /// Base of the links in mail, the web app's public address.
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://localhost:8080")]
    pub public_base_url: String,
}

/// What the order handlers need beyond the database and mail.
#[derive(Debug, Clone, clap::Args)]
pub struct OrderSettings {
    #[command(flatten)]
    pub warehouse: WarehouseSettings,
    /// Sender of order confirmations.
    #[arg(
        long,
        env = "ORDER_MAIL_FROM",
        default_value = "Store <orders@store.localhost>"
    )]
    pub order_mail_from: String,
}

/// What the photo handlers need.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineSettings {
    #[command(flatten)]
    pub photos: PhotoSettings,
    /// Thumbnail sizes in pixels (square), comma-separated.
    #[arg(long, env = "THUMBNAIL_SIZES", value_delimiter = ',', default_value = "64,256,512",
          value_parser = clap::value_parser!(u32).range(8..=2048))]
    pub thumbnail_sizes: Vec<u32>,
    /// Image decodes, resizes and hashes run at once by this process (default: one per core
    /// it may use). Jobs beyond it wait for a slot; raise WORKER_CONCURRENCY for I/O, not this.
    #[arg(long, env = "WORKER_CPU_THREADS")]
    pub cpu_threads: Option<NonZeroUsize>,
    /// Perceptual hashes of banned images, one hex fingerprint per line (none: nothing is banned).
    #[arg(long, env = "BLOCKLIST_FILE")]
    pub blocklist_file: Option<PathBuf>,
    /// Largest Hamming distance (of 64 bits) at which an image matches a blocklist entry.
    #[arg(long, env = "BLOCKLIST_MAX_DISTANCE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(0..=32))]
    pub blocklist_max_distance: u32,
    /// Sender of upload confirmations.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "Photos <no-reply@photos.localhost>"
    )]
    pub mail_from: String,
    /// Users have no address of their own yet: mail goes to `<user_id>@USER_EMAIL_DOMAIN`.
    #[arg(long, env = "USER_EMAIL_DOMAIN", default_value = "users.localhost")]
    pub user_email_domain: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn metrics_addr(args: &[&str]) -> Result<MetricsAddr, clap::Error> {
        let mut argv = vec!["worker", "--database-url", "postgres://x@localhost/x"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| cli.metrics_addr)
    }

    #[test]
    fn the_metrics_listener_can_be_moved_or_turned_off_and_a_bad_address_is_refused() {
        let moved = metrics_addr(&["--metrics-addr", "127.0.0.1:9100"]);
        assert_eq!(
            moved.ok(),
            Some(MetricsAddr(Some(([127, 0, 0, 1], 9100).into())))
        );
        assert_eq!(
            metrics_addr(&["--metrics-addr", "off"]).ok(),
            Some(MetricsAddr(None))
        );
        assert_eq!(
            metrics_addr(&["--metrics-addr", ""]).ok(),
            Some(MetricsAddr(None))
        );
        assert!(metrics_addr(&["--metrics-addr", "localhost"]).is_err());
    }
}
