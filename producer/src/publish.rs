//! `producer publish`: from a kind name and JSON to a typed, confirmed publish.

use std::io::Write;

use anyhow::{Context, bail};
use photos::{EmailJob, KINDS, ModerationJob, ProfileUrlJob, ThumbnailJob};
use rabbitmq_jobs::{Job, JobId, Publisher};

/// Parses `payload` as the job type of `kind` and publishes `count` copies with pipelined confirms.
pub async fn publish_by_kind(
    publisher: &Publisher,
    kind: &str,
    payload: &str,
    count: u32,
) -> anyhow::Result<Vec<JobId>> {
    match kind {
        ThumbnailJob::KIND => publish_copies::<ThumbnailJob>(publisher, payload, count).await,
        ModerationJob::KIND => publish_copies::<ModerationJob>(publisher, payload, count).await,
        EmailJob::KIND => publish_copies::<EmailJob>(publisher, payload, count).await,
        ProfileUrlJob::KIND => publish_copies::<ProfileUrlJob>(publisher, payload, count).await,
        other => bail!(
            "unknown job kind `{other}`; known kinds: {}",
            KINDS.join(", ")
        ),
    }
}

async fn publish_copies<J: Job>(
    publisher: &Publisher,
    payload: &str,
    count: u32,
) -> anyhow::Result<Vec<JobId>> {
    let job: J = serde_json::from_str(payload)
        .with_context(|| format!("--payload is not a valid `{}` payload", J::KIND))?;
    let copies = usize::try_from(count).context("--count too large")?;
    publisher
        .publish_batch(std::iter::repeat_n(&job, copies))
        .await
        .with_context(|| format!("publishing {count} `{}` job(s)", J::KIND))
}

/// Prints each id on its own line, for scripts.
pub(crate) fn print_ids(ids: &[JobId]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for id in ids {
        writeln!(out, "{id}").context("writing to stdout")?;
    }
    Ok(())
}
