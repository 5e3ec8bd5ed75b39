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
use tokio::time::Instant;

use super::{DeadLetter, DeadLetterError, Filter, KindSummary, OPERATION_TIMEOUT, TOP_REASONS};
use crate::backoff::Backoff;
use crate::topology::dead_letter_queue;

/// How long ending a walk waits for the broker to put back what it did not ack: quorum queues
/// take them back asynchronously, after the channel is gone, and whoever reads the queue next
/// (the dashboard's next poll, an operator's next command) must see them there.
const RETURN_WAIT: Duration = Duration::from_secs(5);

/// Runs `work` over a walk of `kind`'s dead-letter queue and always ends the walk, on errors
/// too, so that what it did not ack is back in the queue when this returns.
pub(super) async fn walk<T>(
    connection: &Connection,
    kind: &str,
    work: impl AsyncFnOnce(&mut Scan) -> Result<T, DeadLetterError>,
) -> Result<T, DeadLetterError> {
    let mut scan = Scan::open(connection, kind).await?;
    let result = work(&mut scan).await;
    scan.end(connection).await;
    result
}

/// An open walk over one kind's dead-letter queue.
pub(super) struct Scan {
    channel: Channel,
    queue: String,
    /// Messages in the queue when the walk began.
    start: u32,
    left: u32,
    taken: u32,
    acked: u32,
}

impl Scan {
    /// Opens a channel on `kind`'s dead-letter queue and counts what it holds now.
    async fn open(connection: &Connection, kind: &str) -> Result<Self, DeadLetterError> {
        let queue = dead_letter_queue(kind);
        let channel = bounded("opening a channel", connection.create_channel()).await?;
        let start = ready_in(&channel, &queue).await?;
        Ok(Self {
            channel,
            queue,
            start,
            left: start,
            taken: 0,
            acked: 0,
        })
    }

    /// How many messages are left to visit of those there at the start.
    pub(super) fn left(&self) -> u32 {
        self.left
    }

    /// Empties the queue at once; how many messages it dropped.
    pub(super) async fn purge(&mut self) -> Result<u32, DeadLetterError> {
        let purge = self
            .channel
            .queue_purge(self.queue.as_str().into(), QueuePurgeOptions::default());
        let purged = bounded(&format!("purging {}", self.queue), purge).await?;
        self.left = 0;
        Ok(purged)
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
        let got = bounded(&format!("taking from {}", self.queue), get).await?;
        self.taken += u32::from(got.is_some());
        Ok(got.map(|message| message.delivery))
    }

    /// Removes `delivery` from the queue for good.
    pub(super) async fn ack(&mut self, delivery: &Delivery) -> Result<(), DeadLetterError> {
        let ack = delivery.acker.ack(BasicAckOptions::default());
        bounded(&format!("acking on {}", self.queue), ack).await?;
        self.acked += 1;
        Ok(())
    }

    /// Ends the walk: closing the channel returns every unacked message to the queue; waits
    /// (a while) until they are back.
    async fn end(self, connection: &Connection) {
        close(&self.channel).await;
        if self.taken > self.acked {
            // Dead letters arriving meanwhile may end the wait early; other walks taking
            // some may make it last its whole time. Either way the wait is bounded.
            let expected = self.start.saturating_sub(self.acked);
            if let Err(error) = wait_for_count(connection, &self.queue, expected).await {
                tracing::debug!(%error, queue = self.queue, "waiting for unacked dead letters to return");
            }
        }
    }
}

/// Waits until `queue` holds at least `expected` ready messages, for up to [`RETURN_WAIT`].
async fn wait_for_count(
    connection: &Connection,
    queue: &str,
    expected: u32,
) -> Result<(), DeadLetterError> {
    let deadline = Instant::now() + RETURN_WAIT;
    let channel = bounded("opening a channel", connection.create_channel()).await?;
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(200));
    let result = loop {
        let pause = backoff.next_delay();
        match ready_in(&channel, queue).await {
            Ok(count) if count >= expected => break Ok(()),
            Ok(_) if Instant::now() + pause < deadline => {}
            Ok(count) => {
                break Err(DeadLetterError::Timeout {
                    what: format!("{queue} holds {count} of {expected}"),
                    timeout: RETURN_WAIT,
                });
            }
            Err(error) => break Err(error),
        }
        tokio::time::sleep(pause).await;
    };
    close(&channel).await;
    result
}

/// How many ready messages `queue` holds (a passive declare).
async fn ready_in(channel: &Channel, queue: &str) -> Result<u32, DeadLetterError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel.queue_declare(queue.into(), passive, FieldTable::default());
    Ok(bounded(&format!("reading {queue}"), declared)
        .await?
        .message_count())
}

async fn close(channel: &Channel) {
    let close = channel.close(200, "dead letters read".into());
    if let Err(error) = bounded("closing the channel", close).await {
        // The broker returns unacked messages whenever the channel goes, closed or lost.
        tracing::debug!(%error, "closing the dead-letter channel");
    }
}

/// `operation` within [`OPERATION_TIMEOUT`], its failure named.
pub(super) async fn bounded<T>(
    what: &str,
    operation: impl Future<Output = Result<T, lapin::Error>>,
) -> Result<T, DeadLetterError> {
    let timeout = OPERATION_TIMEOUT;
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
