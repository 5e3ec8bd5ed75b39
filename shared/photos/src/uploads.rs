//! Accepting an avatar upload, the app's one synchronous step: check the image, save it,
//! record it and queue its jobs. The web layer only reads the request and maps the outcome
//! to HTTP; an upload's list of jobs is here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use rabbitmq_jobs::{Job, PublishError, Publisher};
use uuid::Uuid;

use crate::files::{original_key, public_original_key};
use crate::imaging::{
    CheckedImage, DecodeBudget, DecodeError, MetadataError, UploadLimits, check_upload,
    decode_cost, strip_metadata,
};
use crate::{
    EmailJob, LocalStorage, ModerationJob, NewUpload, PhotoStore, Storage, StoreError, ThumbnailJob,
};

/// The kinds every upload queues, recorded with it so its status lists them from the start.
pub const UPLOAD_KINDS: [&str; 3] = [ThumbnailJob::KIND, ModerationJob::KIND, EmailJob::KIND];

/// What a client refused for a full decode budget is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Why an upload was not accepted: the image's fault (say so, do not retry as is) or ours
/// (a dependency is down, or the server is busy: try again).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The bytes are not an image we take, or not a whole one.
    #[error(transparent)]
    Image(#[from] DecodeError),
    /// The image decoded but its metadata could not be taken apart to strip it.
    #[error("the image is malformed: {0}")]
    Malformed(MetadataError),
    /// Decoding it now would exceed the memory budget for decodes, even after waiting.
    #[error("the server is decoding as many images as its memory allows; please try again shortly")]
    Busy {
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
    /// Its files could not be written.
    #[error("storing the image failed: {0}")]
    Storage(std::io::Error),
    /// It could not be recorded.
    #[error("recording the upload failed: {0}")]
    Store(StoreError),
    /// Its jobs could not be queued (the upload was forgotten again).
    #[error("queueing the image's jobs failed: {0}")]
    Queue(PublishError),
    /// The check itself failed (a panic in a decoder, caught).
    #[error("checking the image failed: {0}")]
    Check(String),
}

/// An accepted upload.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its id, for its status URL.
    pub image_id: Uuid,
}

/// Everything accepting an upload uses.
#[derive(Debug, Clone)]
pub struct Uploads {
    pub store: PhotoStore,
    pub storage: Arc<LocalStorage>,
    pub publisher: Publisher,
    pub limits: UploadLimits,
    /// Memory for concurrent decodes, shared by every upload.
    pub decode_budget: DecodeBudget,
    /// Longest an upload waits for room in it.
    pub decode_wait: Duration,
}

/// The jobs an upload queues, in [`UPLOAD_KINDS`] order.
#[must_use]
pub fn upload_jobs(image_id: Uuid, user_id: &str) -> (ThumbnailJob, ModerationJob, EmailJob) {
    let user_id = user_id.to_owned();
    (
        ThumbnailJob {
            image_id,
            user_id: user_id.clone(),
        },
        ModerationJob {
            image_id,
            user_id: user_id.clone(),
        },
        EmailJob { image_id, user_id },
    )
}

impl Uploads {
    /// Checks `bytes`, saves the original and its public copy (not served before moderation
    /// approves it), records the upload and queues its jobs; returns once the broker has
    /// confirmed them, never waiting for a handler. `user_id` is checked by the caller.
    pub async fn accept(&self, user_id: &str, bytes: Vec<u8>) -> Result<Accepted, UploadError> {
        let (checked, public_copy, original) = self.inspect(bytes).await?;
        let image_id = Uuid::new_v4();
        let extension = checked.format.extension();
        let original_key = original_key(image_id, extension);
        let public_key = public_original_key(image_id, extension);
        let byte_size = original.len();
        // Both files before the record: a recorded upload always has its files.
        tokio::try_join!(
            self.storage.put(&original_key, original),
            self.storage.put(&public_key, public_copy),
        )
        .map_err(UploadError::Storage)?;
        let format = checked.format.to_string();
        let upload = NewUpload {
            image_id,
            user_id,
            format: &format,
            width: checked.width,
            height: checked.height,
            byte_size,
            original_key: &original_key,
            public_original_key: &public_key,
            kinds: &UPLOAD_KINDS,
        };
        self.store
            .record_upload(&upload)
            .await
            .map_err(UploadError::Store)?;
        if let Err(error) = self.queue_jobs(image_id, user_id).await {
            // Nothing was promised yet: forget the upload and let the client retry.
            if let Err(cleanup) = self.store.forget_upload(image_id).await {
                tracing::warn!(%cleanup, %image_id, "could not remove an upload whose jobs failed");
            }
            return Err(UploadError::Queue(error));
        }
        tracing::info!(%image_id, user_id, format, byte_size, "upload accepted");
        Ok(Accepted { image_id })
    }

    async fn queue_jobs(&self, image_id: Uuid, user_id: &str) -> Result<(), PublishError> {
        let (thumbnails, moderation, email) = upload_jobs(image_id, user_id);
        tokio::try_join!(
            self.publisher.publish(&thumbnails),
            self.publisher.publish(&moderation),
            self.publisher.publish(&email),
        )?;
        Ok(())
    }

    /// Checks the image off the async threads (decoding is CPU work) and makes the public
    /// copy. The decode first reserves the memory its header declares: with the budget full
    /// beyond `decode_wait`, the client is told to come back rather than the process growing.
    async fn inspect(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(CheckedImage, Vec<u8>, Vec<u8>), UploadError> {
        let limits = self.limits;
        let cost = decode_cost(&bytes, &limits)?;
        let room = self
            .decode_budget
            .reserve_within(cost, self.decode_wait)
            .await
            .map_err(|full| {
                tracing::warn!(%full, cost, "upload refused: the decode memory budget is full");
                UploadError::Busy {
                    retry_after: RETRY_AFTER,
                }
            })?;
        tokio::task::spawn_blocking(move || {
            let _room = room;
            let checked = check_upload(&bytes, &limits)?;
            let public_copy =
                strip_metadata(&bytes, checked.format).map_err(UploadError::Malformed)?;
            Ok((checked, public_copy, bytes))
        })
        .await
        .map_err(|e| UploadError::Check(e.to_string()))?
    }
}
