//! The four jobs of an avatar upload, and their wire kinds.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use rabbitmq_jobs::{Catalog, Job};

/// Make the thumbnail sizes of an uploaded image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailJob {
    /// The uploaded image.
    pub image_id: Uuid,
    /// Its owner.
    pub user_id: String,
}

impl Job for ThumbnailJob {
    const KIND: &'static str = "process_thumbnails";
    const VERSION: u32 = 1;
    /// A 50-megapixel image takes seconds; anything near this is stuck.
    const TIMEOUT: Duration = Duration::from_secs(120);
}

/// Check an uploaded image against the content filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationJob {
    /// The uploaded image.
    pub image_id: Uuid,
    /// Its owner.
    pub user_id: String,
}

impl Job for ModerationJob {
    const KIND: &'static str = "moderate_content";
    const VERSION: u32 = 1;
}

/// Send the upload's confirmation email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    /// The uploaded image.
    pub image_id: Uuid,
    /// The recipient's user id.
    pub user_id: String,
}

impl Job for EmailJob {
    const KIND: &'static str = "send_email";
    const VERSION: u32 = 1;
}

/// Point the user's profile at the new avatar, once it is processed and approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUrlJob {
    /// The approved image.
    pub image_id: Uuid,
    /// Its owner.
    pub user_id: String,
}

impl Job for ProfileUrlJob {
    const KIND: &'static str = "update_profile_url";
    const VERSION: u32 = 1;
}

/// Every job type of this domain by kind: its topology, `WORKER_KINDS`, publishing from
/// JSON (`producer publish`).
#[must_use]
pub fn catalog() -> Catalog {
    Catalog::new()
        .with::<ThumbnailJob>()
        .with::<ModerationJob>()
        .with::<EmailJob>()
        .with::<ProfileUrlJob>()
}
