//! The end of the run: once the load has stopped, wait (with a deadline, polling) until the
//! system is quiet: every work, wait and quarantine queue empty with nothing unacked, and the
//! handled count unchanged, for a few seconds in a row.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use support::wait_until;
use tokio::time::Instant;

use crate::records;
use crate::stack::Stack;

/// How long the system must stay quiet (the management statistics lag by up to 0.5 s).
const QUIET_FOR: Duration = Duration::from_secs(3);

/// Queues that must end empty: everything of the job system but the dead-letter queues.
fn must_drain(queue: &str) -> bool {
    queue.starts_with("jobs.") && !queue.ends_with(".dlq")
}

/// Messages ready or unacked in the queues that must drain, if it could be read.
async fn in_queues(stack: &Stack) -> Option<u64> {
    let queues = stack.management().queues("/").await.ok()?;
    Some(
        queues
            .iter()
            .filter(|q| must_drain(&q.name))
            .map(|q| q.messages_ready + q.messages_unacknowledged)
            .sum(),
    )
}

/// Waits until the system is quiet; returns how long that took.
pub async fn settle(stack: &Stack, patience: Duration) -> anyhow::Result<Duration> {
    let began = Instant::now();
    // (when the quiet began, the handled count then)
    let quiet: Mutex<Option<(Instant, i64)>> = Mutex::new(None);
    let last: Mutex<(Option<u64>, i64)> = Mutex::new((None, 0));
    let mut next_report = Instant::now();
    let waited = wait_until(patience, "every queue empty and nothing unacked", || {
        let report = Instant::now() >= next_report;
        if report {
            next_report = Instant::now() + Duration::from_secs(15);
        }
        let (quiet, last) = (&quiet, &last);
        async move {
            let queued = in_queues(stack).await;
            let handled = records::handled_count(&stack.pool).await.unwrap_or(-1);
            *last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = (queued, handled);
            if report {
                println!("  draining: {queued:?} in the queues, {handled} effects applied");
            }
            let mut quiet = quiet
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match (*quiet, queued) {
                (Some((since, then)), Some(0)) if then == handled => since.elapsed() >= QUIET_FOR,
                (_, Some(0)) => {
                    *quiet = Some((Instant::now(), handled));
                    false
                }
                _ => {
                    *quiet = None;
                    false
                }
            }
        }
    })
    .await;
    let (queued, handled) = *last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    waited.map_err(|e| anyhow!("{e}; last seen: {queued:?} in the queues, {handled} effects"))?;
    Ok(began.elapsed())
}

/// The queues that are not empty now, for the report.
pub async fn leftovers(stack: &Stack) -> anyhow::Result<Vec<String>> {
    let queues = stack
        .management()
        .queues("/")
        .await
        .map_err(|e| anyhow!(e))?;
    Ok(queues
        .iter()
        .filter(|q| must_drain(&q.name) && q.messages_ready + q.messages_unacknowledged > 0)
        .map(|q| {
            format!(
                "{}: {} ready, {} unacked",
                q.name, q.messages_ready, q.messages_unacknowledged
            )
        })
        .collect())
}
