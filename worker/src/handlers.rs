//! The photo pipeline's handlers. Until the pipeline lands, each one logs its job and succeeds.

use shared::photos::{EmailJob, ModerationJob, ProfileUrlJob, ThumbnailJob};
use shared::{JobContext, JobResult, Registry};

/// Every kind this worker knows, with its handler.
#[must_use]
pub fn registry() -> Registry {
    Registry::new()
        .register(|job: ThumbnailJob, ctx: JobContext| log_job("thumbnails", job.image_id, ctx))
        .register(|job: ModerationJob, ctx: JobContext| log_job("moderation", job.image_id, ctx))
        .register(|job: EmailJob, ctx: JobContext| log_job("email", job.image_id, ctx))
        .register(|job: ProfileUrlJob, ctx: JobContext| log_job("profile url", job.image_id, ctx))
}

async fn log_job(what: &'static str, image_id: uuid::Uuid, ctx: JobContext) -> JobResult {
    tracing::info!(what, %image_id, id = %ctx.id, attempt = ctx.attempt, "handled");
    Ok(())
}
