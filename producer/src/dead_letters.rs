//! `producer dead-letters`: what failed and why, and sending failed jobs back to work or
//! dropping them. The admin API offers the same through [`rabbitmq_jobs::DeadLetters`].

use std::io::Write;

use anyhow::Context;
use rabbitmq_jobs::{AmqpSettings, DeadLetters, Filter, KindSummary, Publisher, PublisherSettings};

use crate::cli::{DeadLetterAction, Selection};

/// Dead letters read per kind for `list`'s oldest failure and top reasons.
const SUMMARY_READ: usize = 10_000;

/// The dead-letter queues of every kind of the app, over `amqp` (which must be allowed to
/// read them: see `ADMIN_AMQP_URL`).
pub fn dead_letters(
    amqp: &AmqpSettings,
    publishing: PublisherSettings,
) -> anyhow::Result<DeadLetters> {
    let kinds: Vec<String> = crate::catalog()?.kinds().map(str::to_owned).collect();
    let topology = amqp.topology(&kinds).context("building the topology")?;
    let publisher = Publisher::new(amqp, publishing, topology, "dead letters")
        .with_context(|| format!("setting up the publisher for {}", amqp.redacted()))?;
    Ok(DeadLetters::new(amqp, publisher, &kinds))
}

/// Runs one `dead-letters` action and prints its result.
pub async fn run(action: DeadLetterAction, dead: &DeadLetters) -> anyhow::Result<()> {
    let printed = match action {
        DeadLetterAction::List { json } => {
            let summary = dead
                .summary(SUMMARY_READ)
                .await
                .context("reading dead letters")?;
            if json {
                serde_json::to_string_pretty(&summary).context("writing JSON")?
            } else {
                summary_table(&summary)
            }
        }
        DeadLetterAction::Show { id } => {
            let letter = dead.show(&id).await.context("reading dead letters")?;
            let letter = letter.with_context(|| format!("no dead letter of job {id}"))?;
            serde_json::to_string_pretty(&letter).context("writing JSON")?
        }
        DeadLetterAction::Replay(selection) => {
            let filter = selection.filter("replay")?;
            let done = dead
                .replay(&filter)
                .await
                .context("replaying dead letters")?;
            format!(
                "replayed {}; left {} that the filter did not take",
                done.replayed, done.skipped
            )
        }
        DeadLetterAction::Purge { selection, yes } => {
            let filter = selection.filter("purge")?;
            anyhow::ensure!(
                yes,
                "purge drops dead letters for good: add --yes to go ahead"
            );
            let purged = dead.purge(&filter).await.context("purging dead letters")?;
            format!("purged {purged}")
        }
    };
    writeln!(std::io::stdout().lock(), "{printed}").context("writing to stdout")
}

impl Selection {
    /// The filter, refusing an empty one unless `--all` says so: a bare `replay` or `purge`
    /// should not act on every failed job by accident.
    fn filter(self, verb: &str) -> anyhow::Result<Filter> {
        let filter = Filter {
            kind: self.kind,
            id: self.id,
            reason: self.reason,
            body: self.body,
        };
        anyhow::ensure!(
            self.all || !filter.is_empty(),
            "say which dead letters to {verb}: --id, --kind, --reason, --body, or --all"
        );
        Ok(filter)
    }
}

fn summary_table(summary: &[KindSummary]) -> String {
    let mut table = format!(
        "{:<26} {:>7}  {:<20}  TOP REASONS",
        "KIND", "COUNT", "OLDEST FAILURE"
    );
    for kind in summary {
        let oldest = kind.oldest.map_or_else(
            || "-".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
        );
        let reasons: Vec<String> = kind
            .reasons
            .iter()
            .map(|(reason, count)| format!("{count}× {reason}"))
            .collect();
        table.push_str(&format!(
            "\n{:<26} {:>7}  {:<20}  {}",
            kind.kind,
            kind.count,
            oldest,
            reasons.join("; ")
        ));
    }
    table
}
