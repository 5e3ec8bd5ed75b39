//! A message on its way out, and one written whose confirm is awaited: what the publisher
//! measures (`jobs_published_total`, `job_publish_confirm_seconds`) starts here.

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, PublisherConfirm};
use tokio::time::Instant;

use super::PublishError;
use super::lane::Lane;
use crate::envelope::EncodedJob;
use crate::topology::EXCHANGE;

/// One message on its way out.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing<'a> {
    pub(crate) exchange: &'a str,
    pub(crate) routing_key: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) properties: BasicProperties,
    /// A job's own publish, counted in `jobs_published_total` once confirmed; false for the
    /// copies the runtime parks (retries, dead letters, requeued orphans).
    pub(crate) new_job: bool,
}

impl<'a> From<&'a EncodedJob> for Outgoing<'a> {
    fn from(job: &'a EncodedJob) -> Self {
        Self {
            exchange: EXCHANGE,
            routing_key: job.kind,
            body: &job.body,
            properties: job.properties(),
            new_job: true,
        }
    }
}

/// A message written to a lane, its confirm not yet in.
pub(super) struct Pending {
    pub(super) confirm: PublisherConfirm,
    /// When it was written: its confirm latency runs from here.
    pub(super) sent: Instant,
}

/// Writes `message` on `lane`, mandatory (an unroutable job comes back, never vanishes).
pub(super) async fn start_publish(
    lane: &Lane,
    message: &Outgoing<'_>,
) -> Result<Pending, PublishError> {
    let sent = Instant::now();
    let confirm = lane
        .channel
        .basic_publish(
            message.exchange.into(),
            message.routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            message.body,
            message.properties.clone(),
        )
        .await
        .map_err(|e| PublishError::connection("publishing", e))?;
    Ok(Pending { confirm, sent })
}
