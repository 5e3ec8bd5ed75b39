//! Settings both photo binaries need: the file storage and the image limits.

use std::path::PathBuf;

use dbkit::Database;

use super::database::PhotoStore;
use super::files::LocalStorage;
use super::imaging::{DecodeBudget, UploadLimits};

/// Why the photo app's data could not be opened; each names the setting to check.
#[derive(Debug, thiserror::Error)]
pub enum OpenDataError {
    /// The storage directory cannot be created or used.
    #[error("opening STORAGE_DIR {dir}: {source}")]
    Storage {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the photo app keeps its data (the database's settings are every domain's:
/// [`dbkit::DatabaseSettings`]).
#[derive(Debug, Clone, clap::Args)]
pub struct PhotoSettings {
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

    /// The photo tables of `database` (connected with this domain's [`schema`](crate::schema)
    /// checked) and the storage directory, opened.
    pub fn open(&self, database: &Database) -> Result<(PhotoStore, LocalStorage), OpenDataError> {
        let storage =
            LocalStorage::new(&self.storage_dir).map_err(|source| OpenDataError::Storage {
                dir: self.storage_dir.clone(),
                source,
            })?;
        Ok((PhotoStore::new(database), storage))
    }
}
