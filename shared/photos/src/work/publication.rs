//! Moderation gates what is served: an upload's files wait under `pending/` and move to
//! `public/` only once it is approved; a rejected upload's are removed.

use crate::files::published_key;
use crate::{ImageFacts, Storage};
use rabbitmq_jobs::{JobResult, ResultExt};
use uuid::Uuid;

use super::Pipeline;

impl Pipeline {
    /// Moves an approved image's files to where they are served, then records that they are
    /// there (so its URLs are listed only once they answer). Repeatable: a move done already
    /// succeeds. An image not approved is left alone.
    pub(super) async fn publish_files(&self, image_id: Uuid, facts: &ImageFacts) -> JobResult {
        if facts.published || facts.moderation.as_deref() != Some("approved") {
            return Ok(());
        }
        for key in facts.served_files() {
            self.storage
                .rename(key, &published_key(key))
                .await
                .or_retry("moving a file to where it is served")?;
        }
        self.store
            .mark_published(image_id)
            .await
            .or_retry("recording the publication")
    }

    /// Removes a rejected image's held-back files (the private original stays, for
    /// moderators).
    pub(super) async fn remove_served_files(
        &self,
        image_id: Uuid,
        facts: &ImageFacts,
    ) -> JobResult {
        for key in facts.served_files() {
            self.storage
                .remove(key)
                .await
                .or_retry("removing a rejected image's file")?;
        }
        tracing::info!(%image_id, "rejected image's files removed");
        Ok(())
    }
}
