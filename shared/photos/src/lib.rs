//! The photo-sharing domain: the jobs an avatar upload fans out into, their store, their
//! files, their image work and their handlers ([`registry`]), which a worker merges with
//! other domains'.
//!
//! The job machinery ([`rabbitmq_jobs`]) knows nothing of photos; this crate implements
//! [`Job`](rabbitmq_jobs::Job) for its payloads and a
//! [`JobObserver`](rabbitmq_jobs::JobObserver) to show their progress.

mod database;
pub mod files;
pub mod imaging;
mod jobs;
mod recorder;
mod settings;
mod status;
mod uploads;
mod work;

pub use self::database::{Claim, ImageFacts, JobRecord, NewUpload, PhotoStore, schema};
pub use self::files::{LocalStorage, Storage};
pub use self::jobs::{EmailJob, ModerationJob, ProfileUrlJob, ThumbnailJob, catalog};
pub use self::recorder::StatusRecorder;
pub use self::settings::{OpenDataError, PhotoSettings};
pub use self::status::{
    ImageState, ImageStatus, JobState, JobStatus, REJECTION_NOTICE, UserProfile,
};
pub use self::uploads::{Accepted, Queueing, UPLOAD_KINDS, UploadError, Uploads, upload_jobs};
pub use self::work::{Pipeline, registry};
pub use dbkit::StoreError;
