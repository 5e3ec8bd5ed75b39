//! `moderate_content`: the content filter's verdict; an approval may complete the join.

use std::sync::Arc;

use crate::ModerationJob;
use crate::imaging::ModerationVerdict;
use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Pipeline;

pub async fn handle(pipeline: Arc<Pipeline>, job: ModerationJob) -> JobResult {
    let Some(facts) = pipeline.facts(job.image_id).await? else {
        return Ok(());
    };
    let (original, room) = pipeline.original(&facts).await?;
    let checker = Arc::clone(&pipeline);
    let verdict = pipeline
        .cpu
        .run(move || {
            let _room = room;
            checker.filter.check(&original)
        })
        .await
        .or_retry("the moderation task")?
        .map_err(|e| JobError::permanent(format!("moderating: {e}")))?;
    let (approved, reason) = match &verdict {
        ModerationVerdict::Approved => (true, None),
        ModerationVerdict::Rejected { reason } => (false, Some(reason.as_str())),
    };
    pipeline
        .store
        .save_moderation(job.image_id, approved, reason)
        .await
        .or_retry("recording the verdict")?;
    if !approved {
        // The reason names the matching entry: for the logs and the moderators' table only.
        tracing::info!(image_id = %job.image_id, ?reason, "image rejected");
        return pipeline.remove_served_files(job.image_id, &facts).await;
    }
    pipeline.complete_join(job.image_id, &facts).await
}
