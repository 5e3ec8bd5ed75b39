//! Shows each order job's progress on its order: the runtime's job events, written to
//! `order_jobs`.

use dbkit::JobState;
use rabbitmq_jobs::{JobEvent, JobObserver, Observed};
use serde::Deserialize;
use uuid::Uuid;

use crate::database::OrderStore;

/// Records the order jobs' events in the database.
#[derive(Debug, Clone)]
pub struct OrderRecorder {
    store: OrderStore,
}

impl OrderRecorder {
    /// A recorder writing to `store`.
    #[must_use]
    pub fn new(store: OrderStore) -> Self {
        Self { store }
    }
}

/// Every order job's payload names its order.
#[derive(Deserialize)]
struct Payload {
    order_id: Uuid,
}

impl JobObserver for OrderRecorder {
    fn observe<'a>(&'a self, event: JobEvent<'a>) -> Observed<'a> {
        Box::pin(async move {
            // A body that is not an order job has no order to show it on.
            let Some(payload) = event.payload::<Payload>() else {
                return Ok(());
            };
            let (state, error) = JobState::after(&event.outcome);
            let recorded = self
                .store
                .record_job(payload.order_id, event.kind, state, event.attempt, error)
                .await;
            match recorded {
                Ok(()) => Ok(()),
                // The database is down or busy: a final outcome's job stays unacked, and the
                // write is tried again.
                Err(error) if error.is_transient() => Err(error.into()),
                // Trying again cannot help (no such order): nowhere to show it.
                Err(error) => {
                    tracing::warn!(%error, kind = event.kind, "the job's state cannot be recorded; not trying again");
                    Ok(())
                }
            }
        })
    }
}
