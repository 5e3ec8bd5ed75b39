//! Publishing a job that may not run before a given time (see [`crate::delay`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Outgoing, PublishError, Publisher};
use crate::delay::{due_after, next_tier, write_due};
use crate::envelope::job_properties;
use crate::job::{Job, JobId};
use crate::topology::EXCHANGE;

impl Publisher {
    /// Publishes `job` to run `delay` from now at the earliest (e.g. a reminder mail five
    /// minutes after an order). Confirmed like [`Publisher::publish`]; the job then waits in
    /// the broker's wait queues, not in this process, so it survives restarts of both.
    pub async fn publish_in<J: Job>(
        &self,
        job: &J,
        delay: Duration,
    ) -> Result<JobId, PublishError> {
        self.publish_at(job, due_after(Utc::now(), delay)).await
    }

    /// Publishes `job` to run at `due` at the earliest; a time already past publishes it at
    /// once. The time is compared with the workers' clocks.
    #[tracing::instrument(skip_all, fields(kind = J::KIND, %due))]
    pub async fn publish_at<J: Job>(
        &self,
        job: &J,
        due: DateTime<Utc>,
    ) -> Result<JobId, PublishError> {
        // A wait queue takes any routing key: check here what the broker would check.
        if !self.inner.lanes.serves(J::KIND) {
            return Err(PublishError::Unroutable {
                exchange: EXCHANGE.to_owned(),
                routing_key: J::KIND.to_owned(),
                reply: "this publisher's topology declares no queue for it".to_owned(),
            });
        }
        let Some(tier) = next_tier(due, Utc::now()) else {
            return self.publish(job).await;
        };
        let encoded = self.encode(job)?;
        let exchange = tier.queue_name();
        let mut headers = encoded.headers();
        write_due(&mut headers, due);
        let message = Outgoing {
            exchange: &exchange,
            routing_key: J::KIND,
            body: &encoded.body,
            properties: job_properties(&encoded.id.to_string(), J::KIND, headers),
            new_job: true,
        };
        self.send(message).await?;
        Ok(encoded.id)
    }
}
