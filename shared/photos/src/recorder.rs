//! Shows each job's progress on its image: the runtime's job events, written to `image_jobs`.

use serde::Deserialize;
use uuid::Uuid;

use super::database::{JobRecord, PhotoStore};
use super::status::JobState;
use rabbitmq_jobs::{JobEvent, JobObserver, Observed};

/// Records the photo jobs' events in the database.
#[derive(Debug, Clone)]
pub struct StatusRecorder {
    store: PhotoStore,
}

impl StatusRecorder {
    /// A recorder writing to `store`.
    #[must_use]
    pub fn new(store: PhotoStore) -> Self {
        Self { store }
    }
}

/// Every photo job's payload names its image.
#[derive(Deserialize)]
struct Payload {
    image_id: Uuid,
}

impl JobObserver for StatusRecorder {
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a> {
        Box::pin(async move {
            // A body that is not a photo job has no image to show it on.
            let Some(payload) = event.payload::<Payload>() else {
                return Ok(());
            };
            let (state, error) = JobState::after(&event.outcome);
            let record = JobRecord {
                image_id: payload.image_id,
                kind: event.kind,
                state,
                attempt: event.attempt,
                error,
            };
            match self.store.record_job(record).await {
                Ok(()) => Ok(()),
                // The database is down or busy: an error keeps a final outcome's job unacked,
                // and the write is tried again.
                Err(error) if error.is_transient() => Err(error.into()),
                // Trying again cannot help (the image is gone: a withdrawn upload, a job for
                // an image that never existed), and there is no status to show it on.
                Err(error) => {
                    tracing::warn!(%error, kind = event.kind, "the job's state cannot be recorded; not trying again");
                    Ok(())
                }
            }
        })
    }
}
