//! Accepting an avatar upload, the app's one synchronous step: check the image, save it,
//! record it and queue its jobs. The web layer only reads the request and maps the outcome
//! to HTTP; an upload's list of jobs is here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use dbkit::WriteError;
use rabbitmq_jobs::outbox::{Outbox, OutboxError};
use rabbitmq_jobs::{Job, PublishError, Publisher, TraceContext};
use tokio_util::task::TaskTracker;
use tracing::Instrument;
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
    /// Its jobs could not be queued (nothing was recorded).
    #[error("queueing the image's jobs failed: {0}")]
    Queue(PublishError),
    /// The outbox holds as many unsent jobs as it may (the broker has been away long).
    #[error("{0}")]
    Backlog(OutboxError),
    /// The check itself failed (a panic in a decoder, caught).
    #[error("checking the image failed: {0}")]
    Check(String),
}

impl UploadError {
    fn from_outbox(error: OutboxError) -> Self {
        match error {
            OutboxError::Job(error) => Self::Queue(error),
            OutboxError::Database(error) => Self::Store(error.into()),
            full @ OutboxError::Full { .. } => Self::Backlog(full),
        }
    }
}

/// An accepted upload.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its id, for its status URL.
    pub image_id: Uuid,
}

/// How an upload's jobs reach the broker.
#[derive(Debug, Clone)]
pub enum Queueing {
    /// Written into the outbox in the upload's own transaction and published by the relay:
    /// accepted whether or not the broker is reachable (the default).
    Outbox(Outbox),
    /// Published before answering, and the upload forgotten again if that fails: the
    /// client waits for the broker's confirms, and gets a 503 while it is down.
    Direct(Publisher),
}

/// Everything accepting an upload uses.
#[derive(Debug, Clone)]
pub struct Uploads {
    pub store: PhotoStore,
    pub storage: Arc<LocalStorage>,
    pub queueing: Queueing,
    pub limits: UploadLimits,
    /// Memory for concurrent decodes, shared by every upload.
    pub decode_budget: DecodeBudget,
    /// Longest an upload waits for room in it.
    pub decode_wait: Duration,
    /// Uploads being accepted, whose clients may have gone: [`Uploads::finish`] waits for
    /// them.
    pub in_flight: TaskTracker,
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
    /// approves it), records the upload and queues its jobs, never waiting for a handler.
    /// `user_id` is checked by the caller. Once the bytes are read, the rest runs as a task
    /// of its own, so a client that goes away meanwhile leaves a complete upload with its
    /// jobs, or nothing.
    pub async fn accept(&self, user_id: &str, bytes: Vec<u8>) -> Result<Accepted, UploadError> {
        let (uploads, user_id) = (self.clone(), user_id.to_owned());
        let accepting = async move { uploads.accept_now(&user_id, bytes).await };
        // The request's trace and span go with it: its jobs and log lines carry the trace id.
        self.in_flight
            .spawn(TraceContext::in_current(accepting).in_current_span())
            .await
            .map_err(|e| UploadError::Check(e.to_string()))?
    }

    /// Takes no more uploads and waits for those being accepted (at shutdown, so that none
    /// is cut between its files and its record).
    pub async fn finish(&self) {
        self.in_flight.close();
        self.in_flight.wait().await;
    }

    async fn accept_now(&self, user_id: &str, bytes: Vec<u8>) -> Result<Accepted, UploadError> {
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
        let recorded = match &self.queueing {
            Queueing::Outbox(outbox) => self.record_with_jobs(&upload, outbox).await,
            Queueing::Direct(publisher) => self.record_then_publish(&upload, publisher).await,
        };
        if let Err(error) = recorded {
            if matches!(error, UploadError::Store(StoreError::Timeout { .. })) {
                // The transaction may still commit: files of nothing are better than a
                // record without its files.
                tracing::warn!(%image_id, "recording an upload timed out; its files are kept");
                return Err(error);
            }
            // Not recorded: the files belong to nothing.
            for key in [&original_key, &public_key] {
                if let Err(cleanup) = self.storage.remove(key).await {
                    tracing::warn!(%cleanup, key, "could not remove a file of an upload not recorded");
                }
            }
            return Err(error);
        }
        tracing::info!(%image_id, user_id, format, byte_size, "upload accepted");
        Ok(Accepted { image_id })
    }

    async fn record_with_jobs(
        &self,
        upload: &NewUpload<'_>,
        outbox: &Outbox,
    ) -> Result<(), UploadError> {
        let (thumbnails, moderation, email) = upload_jobs(upload.image_id, upload.user_id);
        let encoding = [
            outbox.encode(&thumbnails),
            outbox.encode(&moderation),
            outbox.encode(&email),
        ];
        let jobs = encoding
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(UploadError::from_outbox)?;
        match self.store.record_upload(upload, outbox, jobs).await {
            Ok(()) => Ok(()),
            Err(WriteError::Store(error)) => Err(UploadError::Store(error)),
            Err(WriteError::Outbox(error)) => Err(UploadError::from_outbox(error)),
        }
    }

    async fn record_then_publish(
        &self,
        upload: &NewUpload<'_>,
        publisher: &Publisher,
    ) -> Result<(), UploadError> {
        let image_id = upload.image_id;
        self.store
            .record_upload_alone(upload)
            .await
            .map_err(UploadError::Store)?;
        let (thumbnails, moderation, email) = upload_jobs(image_id, upload.user_id);
        let published = tokio::try_join!(
            publisher.publish(&thumbnails),
            publisher.publish(&moderation),
            publisher.publish(&email),
        );
        if let Err(error) = published {
            // Nothing was promised yet: forget the upload and let the client retry.
            if let Err(cleanup) = self.store.forget_upload(image_id).await {
                tracing::warn!(%cleanup, %image_id, "could not remove an upload whose jobs failed");
            }
            return Err(UploadError::Queue(error));
        }
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
