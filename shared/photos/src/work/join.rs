//! The join of thumbnails and moderation: whichever finishes last publishes `update_profile_url`.

use crate::{ImageFacts, ProfileUrlJob};
use rabbitmq_jobs::{JobResult, ResultExt};
use uuid::Uuid;

use super::Pipeline;

impl Pipeline {
    /// Publishes the profile job if this handler completed the join. The claim is committed
    /// only after the broker confirmed the job, so a crash in between lets a redelivery try
    /// again.
    pub(super) async fn complete_join(&self, image_id: Uuid, facts: &ImageFacts) -> JobResult {
        let Some(claim) = self
            .store
            .claim_profile_update(image_id)
            .await
            .or_retry("claiming the profile update")?
        else {
            return Ok(());
        };
        let job = ProfileUrlJob {
            image_id,
            user_id: facts.user_id.clone(),
        };
        self.publisher
            .publish(&job)
            .await
            .or_retry("publishing update_profile_url")?;
        claim
            .commit()
            .await
            .or_retry("committing the profile claim")?;
        tracing::info!(%image_id, "thumbnails and moderation done; profile update queued");
        Ok(())
    }
}
