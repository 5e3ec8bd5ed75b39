//! Settings both photo binaries need: the database, the file storage, the image limits.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use super::database::{PhotoStore, StoreError};
use super::files::LocalStorage;
use super::imaging::{DecodeBudget, UploadLimits};
use rabbitmq_jobs::Backoff;

/// Why the photo app's data could not be opened; each names the setting to check.
#[derive(Debug, thiserror::Error)]
pub enum OpenDataError {
    /// The database is unreachable, refuses us, or its schema is not up to date.
    #[error("connecting to PostgreSQL (DATABASE_URL): {0}")]
    Database(#[from] StoreError),
    /// The storage directory cannot be created or used.
    #[error("opening STORAGE_DIR {dir}: {source}")]
    Storage {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the photo app keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct PhotoSettings {
    /// PostgreSQL URL of the app's database, as the app's own role (`db-setup` creates it);
    /// `--help` does not show the environment's value: it holds a password.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Connections in the database pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,
    /// Longest a database call may take (connecting, a statement, a lock wait, a commit);
    /// enforced by this process and, per statement, by the server.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT", default_value = "5s",
          value_parser = bound)]
    pub database_statement_timeout: Duration,
    /// Directory of stored images, shared by the producer and the workers.
    #[arg(long, env = "STORAGE_DIR", default_value = "./storage")]
    pub storage_dir: PathBuf,
    /// Largest image accepted, in pixels (width × height); larger ones are refused unread.
    #[arg(long, env = "MAX_IMAGE_PIXELS", default_value_t = 50_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_image_pixels: u64,
    /// Memory for decoding images at once, in MiB: each decode reserves what its header
    /// declares (a 12-megapixel photo about 36 MiB, 49 megapixels about 147 MiB) and waits
    /// while the budget is full. One decode larger than the budget runs alone.
    #[arg(long, env = "DECODE_MEMORY_MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub decode_memory_mib: u64,
}

impl PhotoSettings {
    /// The decoding limits these settings imply.
    #[must_use]
    pub fn limits(&self) -> UploadLimits {
        UploadLimits {
            max_pixels: self.max_image_pixels,
        }
    }

    /// The decode memory budget these settings give (one per process).
    #[must_use]
    pub fn decode_budget(&self) -> DecodeBudget {
        DecodeBudget::new(self.decode_memory_mib.saturating_mul(1024 * 1024))
    }

    /// Connects to the database (checking its schema is up to date) and opens the storage directory. A database
    /// that is not reachable yet (the stack is starting, it restarts) or not set up yet is waited for, with
    /// backoff and a warning per failed attempt; a configuration error returns at once.
    pub async fn open(&self) -> Result<(PhotoStore, LocalStorage), OpenDataError> {
        let store = self.connect_when_up().await?;
        let storage =
            LocalStorage::new(&self.storage_dir).map_err(|source| OpenDataError::Storage {
                dir: self.storage_dir.clone(),
                source,
            })?;
        Ok((store, storage))
    }
}

impl PhotoSettings {
    async fn connect_when_up(&self) -> Result<PhotoStore, StoreError> {
        when_database_up("DATABASE_URL", || {
            PhotoStore::connect(
                &self.database_url,
                self.database_max_connections,
                self.database_statement_timeout,
            )
        })
        .await
    }
}

/// Runs `attempt` until it succeeds or fails for a reason waiting will not fix: a database
/// that is not reachable yet (the stack is starting, it restarts) or whose schema is not set
/// up yet is waited for, with backoff and a warning naming `setting` per failed attempt.
pub async fn when_database_up<T, F, Fut>(setting: &str, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut attempts: u64 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        match attempt().await {
            Ok(value) => {
                if attempts > 1 {
                    tracing::info!(attempts, "PostgreSQL is up");
                }
                return Ok(value);
            }
            Err(error) if error.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    attempts,
                    %error,
                    retry_in = ?delay,
                    "PostgreSQL is not ready yet ({setting}); trying again"
                );
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A duration of at least a millisecond (the server's unit; zero would mean no bound).
fn bound(text: &str) -> Result<Duration, String> {
    let duration = rabbitmq_jobs::parse_duration(text)?;
    if duration < Duration::from_millis(1) {
        return Err(format!("`{text}` is shorter than a millisecond"));
    }
    Ok(duration)
}
