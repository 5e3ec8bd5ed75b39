//! Walking a dead-letter queue: each message taken unacked, so that what is not acked goes
//! back to the queue when the walk ends (or its process dies), and only the messages there at
//! the start are visited (a replayed job that fails again is not replayed twice in one go).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};

use super::{DeadLetter, DeadLetterError, Filter, KindSummary, TOP_REASONS};
use crate::topology::dead_letter_queue;

/// An open walk over one kind's dead-letter queue.
pub(super) struct Scan {
    channel: Channel,
    queue: String,
    left: u32,
    timeout: Duration,
}

impl Scan {
    /// Opens a channel on `kind`'s dead-letter queue and counts what it holds now.
    pub(super) async fn open(
        connection: &Connection,
        kind: &str,
        timeout: Duration,
    ) -> Result<Self, DeadLetterError> {
        let queue = dead_letter_queue(kind);
        let channel = bounded(timeout, "opening a channel", connection.create_channel()).await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel.queue_declare(queue.as_str().into(), passive, FieldTable::default());
        let left = bounded(timeout, &format!("reading {queue}"), declared)
            .await?
            .message_count();
        Ok(Self {
            channel,
            queue,
            left,
            timeout,
        })
    }

    /// How many messages are left to visit of those there at the start.
    pub(super) fn left(&self) -> u32 {
        self.left
    }

    /// Empties the queue at once; how many messages it dropped.
    pub(super) async fn purge(self) -> Result<u32, DeadLetterError> {
        let purge = self
            .channel
            .queue_purge(self.queue.as_str().into(), QueuePurgeOptions::default());
        let purged = bounded(self.timeout, &format!("purging {}", self.queue), purge).await;
        self.end().await;
        purged
    }

    /// The next message, unacked; `None` once every message there at the start was seen.
    pub(super) async fn next(&mut self) -> Result<Option<Delivery>, DeadLetterError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let get = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions::default());
        let got = bounded(self.timeout, &format!("taking from {}", self.queue), get).await?;
        Ok(got.map(|message| message.delivery))
    }

    /// Removes `delivery` from the queue for good.
    pub(super) async fn ack(&self, delivery: &Delivery) -> Result<(), DeadLetterError> {
        let ack = delivery.acker.ack(BasicAckOptions::default());
        bounded(self.timeout, &format!("acking on {}", self.queue), ack)
            .await
            .map(drop)
    }

    /// Ends the walk: closing the channel returns every unacked message to the queue.
    pub(super) async fn end(self) {
        let close = self.channel.close(200, "dead letters read".into());
        if let Err(error) = bounded(self.timeout, "closing the channel", close).await {
            // The broker returns unacked messages whenever the channel goes, closed or lost.
            tracing::debug!(%error, "closing the dead-letter channel");
        }
    }
}

/// `operation` within `timeout`, its failure named.
pub(super) async fn bounded<T>(
    timeout: Duration,
    what: &str,
    operation: impl Future<Output = Result<T, lapin::Error>>,
) -> Result<T, DeadLetterError> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(DeadLetterError::Broker {
            what: what.to_owned(),
            source,
        }),
        Err(_) => Err(DeadLetterError::Timeout {
            what: what.to_owned(),
            timeout,
        }),
    }
}

/// One kind's summary from its scan: count, oldest failure, top reasons among `read`.
pub(super) async fn summarize(
    scan: &mut Scan,
    kind: &str,
    read: usize,
) -> Result<KindSummary, DeadLetterError> {
    let count = scan.left();
    let mut reasons: HashMap<String, usize> = HashMap::new();
    let mut oldest: Option<DateTime<Utc>> = None;
    for _ in 0..read {
        let Some(delivery) = scan.next().await? else {
            break;
        };
        let letter = DeadLetter::read(kind, &delivery);
        let reason = letter.reason.unwrap_or_else(|| "(no reason given)".into());
        *reasons.entry(reason).or_default() += 1;
        oldest = oldest.into_iter().chain(letter.failed_at).min();
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    reasons.truncate(TOP_REASONS);
    Ok(KindSummary {
        kind: kind.to_owned(),
        count,
        oldest,
        reasons,
    })
}

/// Adds the letters of the scan the filter takes to `letters`, until it holds `limit`.
pub(super) async fn take_matching(
    scan: &mut Scan,
    kind: &str,
    filter: &Filter,
    limit: usize,
    letters: &mut Vec<DeadLetter>,
) -> Result<(), DeadLetterError> {
    while letters.len() < limit {
        let Some(delivery) = scan.next().await? else {
            break;
        };
        if filter.matches(&delivery) {
            letters.push(DeadLetter::read(kind, &delivery));
        }
    }
    Ok(())
}
