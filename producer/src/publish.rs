//! `producer publish`: from a kind name and JSON to a typed, confirmed publish.

use std::io::Write;

use anyhow::Context;
use rabbitmq_jobs::{Catalog, JobId, Publisher};

/// Parses `payload` as the job type of `kind` in `catalog` and publishes `count` copies, each
/// its own job, with pipelined confirms.
pub async fn publish_by_kind(
    publisher: &Publisher,
    catalog: &Catalog,
    kind: &str,
    payload: &str,
    count: u32,
) -> anyhow::Result<Vec<JobId>> {
    let copies = usize::try_from(count).context("--count too large")?;
    let jobs = catalog
        .encode(kind, payload, copies)
        .context("--kind / --payload")?;
    publisher
        .publish_encoded(&jobs)
        .await
        .with_context(|| format!("publishing {count} `{kind}` job(s)"))
}

/// Prints each id on its own line, for scripts.
pub(crate) fn print_ids(ids: &[JobId]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for id in ids {
        writeln!(out, "{id}").context("writing to stdout")?;
    }
    Ok(())
}
