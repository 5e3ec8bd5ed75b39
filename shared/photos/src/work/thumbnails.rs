//! `process_thumbnails`: square thumbnails of every configured size, off the async threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Storage;
use crate::ThumbnailJob;
use crate::files::thumbnail_key;
use crate::imaging::make_thumbnails;
use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Pipeline;

pub async fn handle(pipeline: Arc<Pipeline>, job: ThumbnailJob) -> JobResult {
    let Some(facts) = pipeline.facts(job.image_id).await? else {
        return Ok(());
    };
    // A rejected image gets no thumbnails; a published one has them (a duplicate delivery).
    if facts.published || facts.moderation.as_deref() == Some("rejected") {
        tracing::info!(image_id = %job.image_id, "thumbnails not needed");
        return Ok(());
    }
    let (original, room) = pipeline.original(&facts).await?;
    let sizes = pipeline.thumbnail_sizes.clone();
    let limits = pipeline.limits;
    // Decoding and resizing are CPU work: off the async threads, and no more at once than
    // there are cores, however many jobs this worker runs.
    let thumbnails = pipeline
        .cpu
        .run(move || {
            let _room = room;
            make_thumbnails(&original, &sizes, &limits)
        })
        .await
        .or_retry("the thumbnail task")?
        .map_err(|e| JobError::permanent(format!("making thumbnails: {e}")))?;
    let mut keys = BTreeMap::new();
    for thumbnail in thumbnails {
        let key = thumbnail_key(job.image_id, thumbnail.size);
        pipeline
            .storage
            .put(&key, thumbnail.jpeg)
            .await
            .or_retry("storing a thumbnail")?;
        keys.insert(thumbnail.size.to_string(), key);
    }
    pipeline
        .store
        .save_thumbnails(job.image_id, &keys)
        .await
        .or_retry("recording the thumbnails")?;
    pipeline.complete_join(job.image_id, &facts).await
}
