//! `update_profile_url`: the approved, processed image is published (its files moved to
//! where they are served) and becomes the user's avatar.

use std::sync::Arc;

use crate::ProfileUrlJob;
use rabbitmq_jobs::{JobResult, ResultExt};

use super::Pipeline;

pub async fn handle(pipeline: Arc<Pipeline>, job: ProfileUrlJob) -> JobResult {
    let Some(facts) = pipeline.facts(job.image_id).await? else {
        return Ok(());
    };
    pipeline.publish_files(job.image_id, &facts).await?;
    let updated = pipeline
        .store
        .set_avatar(&job.user_id, job.image_id)
        .await
        .or_retry("updating the profile")?;
    if updated {
        tracing::info!(user_id = job.user_id, image_id = %job.image_id, "avatar updated");
    } else {
        // A newer upload is the avatar already, or this one is not approved: nothing to do.
        tracing::info!(user_id = job.user_id, image_id = %job.image_id, "avatar left as it is");
    }
    Ok(())
}
