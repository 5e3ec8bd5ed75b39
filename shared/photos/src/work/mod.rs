//! The photo handlers and what they share.
//!
//! Every handler is idempotent (delivery is at least once): files are overwritten with the
//! same content, the first moderation verdict stands, and one-time effects (the profile job,
//! the email) go through a database claim. Nothing of an upload is served before moderation
//! approved it (`publication`).

mod email;
mod join;
mod moderation;
mod profile;
mod publication;
mod thumbnails;

use std::sync::Arc;

use crate::imaging::{ContentFilter, DecodeBudget, DecodeReservation, UploadLimits, decode_cost};
use crate::{
    EmailJob, ImageFacts, LocalStorage, ModerationJob, PhotoStore, ProfileUrlJob, StatusRecorder,
    ThumbnailJob,
};
use mail::lettre::message::Mailbox;
use rabbitmq_jobs::{CpuPool, JobError, Publisher, Registry, ResultExt};
use uuid::Uuid;

use mail::Mailer;

/// Everything the handlers use.
pub struct Pipeline {
    pub store: PhotoStore,
    pub storage: LocalStorage,
    /// Publishes `update_profile_url` when the join completes.
    pub publisher: Publisher,
    pub filter: Box<dyn ContentFilter>,
    /// Decoding, resizing and hashing run here, at most one per core at a time.
    pub cpu: CpuPool,
    pub mailer: Mailer,
    pub mail_from: Mailbox,
    pub user_email_domain: String,
    pub public_base_url: String,
    pub thumbnail_sizes: Vec<u32>,
    pub limits: UploadLimits,
    /// Memory for decodes at once, shared by every handler of this process.
    pub decode_budget: DecodeBudget,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("thumbnail_sizes", &self.thumbnail_sizes)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// The image a job is about; `None` for an upload withdrawn after some of its jobs were
    /// queued (nothing to do), and an error for one never recorded (a bad job).
    async fn facts(&self, image_id: Uuid) -> Result<Option<ImageFacts>, JobError> {
        let facts = self
            .store
            .image_facts(image_id)
            .await
            .or_retry("reading the image")?;
        if facts.is_some() {
            return Ok(facts);
        }
        let withdrawn = self
            .store
            .is_withdrawn(image_id)
            .await
            .or_retry("reading the withdrawal")?;
        if withdrawn {
            tracing::info!(%image_id, "the upload was withdrawn; nothing to do");
            return Ok(None);
        }
        Err(JobError::permanent(format!(
            "image {image_id} does not exist"
        )))
    }

    /// The original upload's bytes, with room reserved in the decode budget for decoding
    /// them (held until the reservation is dropped).
    async fn original(&self, facts: &ImageFacts) -> Result<(Vec<u8>, DecodeReservation), JobError> {
        use crate::Storage;
        let original = self
            .storage
            .get(&facts.original_key)
            .await
            .or_retry("reading the original")?;
        // The upload passed this check once; failing it now is the image's fault for good.
        let cost = decode_cost(&original, &self.limits)
            .map_err(|e| JobError::permanent(format!("reading the original's header: {e}")))?;
        Ok((original, self.decode_budget.reserve(cost).await))
    }
}

/// Every photo kind with its handler, and the status recorder.
#[must_use]
pub fn registry(pipeline: Arc<Pipeline>) -> Registry {
    let recorder = StatusRecorder::new(pipeline.store.clone());
    let (thumbnails, moderation, email, profile) = (
        Arc::clone(&pipeline),
        Arc::clone(&pipeline),
        Arc::clone(&pipeline),
        pipeline,
    );
    Registry::new()
        .register(move |job: ThumbnailJob, _| thumbnails::handle(Arc::clone(&thumbnails), job))
        .register(move |job: ModerationJob, _| moderation::handle(Arc::clone(&moderation), job))
        .register(move |job: EmailJob, _| email::handle(Arc::clone(&email), job))
        .register(move |job: ProfileUrlJob, _| profile::handle(Arc::clone(&profile), job))
        .observe(recorder)
}
