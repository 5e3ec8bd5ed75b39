//! The dead-letter queues as an operator sees them: what failed and why, and the means to
//! send failed jobs back to work (replay) or drop them (purge). The CLI and the admin API
//! both stand on this.
//!
//! A replayed job goes back to its work queue as a fresh job (attempts and errors cleared,
//! `x-job-replayed` counted up); its dead letter is acked only once the broker confirmed the
//! copy, so a crash mid-replay loses nothing and duplicates at most the one job in hand.

mod letter;
mod scan;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::Connection;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};

pub use self::letter::DeadLetter;
use self::scan::{Scan, summarize, take_matching, walk};
use crate::connection::AmqpSettings;
use crate::headers::{
    DELIVERY_COUNT, JOB_ATTEMPTS, JOB_CRASHES, JOB_ERROR, JOB_FAILED_AT, JOB_NOT_BEFORE,
    JOB_ORPHANED, JOB_REPLAYED, header_str, header_u32,
};
use crate::publisher::{Outgoing, PublishError, Publisher};
use crate::topology::EXCHANGE;

/// How long one broker operation (a channel, a get, an ack) may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Reasons shown per kind in a summary.
const TOP_REASONS: usize = 5;

/// Why a dead-letter operation failed. Nothing is lost by a failure: what was not acked
/// returns to its dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// A kind this process does not know.
    #[error("no job kind `{0}` here")]
    UnknownKind(String),
    /// The broker could not be reached.
    #[error("connecting to RabbitMQ: {0}")]
    Connect(#[source] lapin::Error),
    /// The broker refused an operation or the connection was lost.
    #[error("{what}: {source}")]
    Broker {
        /// The operation.
        what: String,
        /// lapin's error.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not answer in time.
    #[error("{what}: no answer within {timeout:?}")]
    Timeout {
        /// The operation.
        what: String,
        /// The limit.
        timeout: Duration,
    },
    /// A replayed copy was not confirmed; its dead letter stays.
    #[error("replaying: {0}")]
    Publish(#[from] PublishError),
}

/// Which dead letters an operation takes; every field left out matches all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    /// One kind's queue only.
    pub kind: Option<String>,
    /// One job, by id.
    pub id: Option<String>,
    /// Dead letters whose reason contains this text.
    pub reason: Option<String>,
    /// Dead letters whose body contains this text (e.g. the id of the image or order a job
    /// is about).
    pub body: Option<String>,
}

impl Filter {
    /// Whether it takes every dead letter.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.kind.is_none() && self.id.is_none() && self.reason.is_none() && self.body.is_none()
    }

    fn matches(&self, delivery: &Delivery) -> bool {
        let properties = &delivery.properties;
        let id_matches = self.id.as_deref().is_none_or(|id| {
            properties
                .message_id()
                .as_ref()
                .is_some_and(|m| m.as_str() == id)
        });
        let reason_matches = self.reason.as_deref().is_none_or(|text| {
            header_str(properties.headers().as_ref(), JOB_ERROR).is_some_and(|r| r.contains(text))
        });
        let body_matches = self
            .body
            .as_deref()
            .is_none_or(|text| String::from_utf8_lossy(&delivery.data).contains(text));
        id_matches && reason_matches && body_matches
    }
}

/// One kind's dead letters in brief.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    /// The kind.
    pub kind: String,
    /// Dead letters in its queue.
    pub count: u32,
    /// When the longest-waiting one failed, among those read.
    pub oldest: Option<DateTime<Utc>>,
    /// The commonest reasons among those read, with their counts, commonest first.
    pub reasons: Vec<(String, usize)>,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Replayed {
    /// Jobs sent back to their work queues (their dead letters removed).
    pub replayed: u64,
    /// Dead letters read that the filter did not take (left in place).
    pub skipped: u64,
}

/// The dead-letter queues of a set of kinds.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    amqp: AmqpSettings,
    publisher: Publisher,
    kinds: Vec<String>,
}

impl DeadLetters {
    /// Over `kinds`' queues; `publisher` (whose topology declares those kinds) sends replays.
    #[must_use]
    pub fn new(amqp: &AmqpSettings, publisher: Publisher, kinds: &[String]) -> Self {
        Self {
            amqp: amqp.clone(),
            publisher,
            kinds: kinds.to_vec(),
        }
    }

    /// The kinds whose queues these are.
    #[must_use]
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Per kind: how many dead letters, the oldest and the commonest reasons among the first
    /// `read` of each queue.
    #[tracing::instrument(skip(self))]
    pub async fn summary(&self, read: usize) -> Result<Vec<KindSummary>, DeadLetterError> {
        self.connected(async |connection| {
            let mut summaries = Vec::new();
            for kind in &self.kinds {
                let summary = walk(connection, kind, async |scan| {
                    summarize(scan, kind, read).await
                });
                summaries.push(summary.await?);
            }
            Ok(summaries)
        })
        .await
    }

    /// Up to `limit` dead letters the filter takes, oldest first per kind.
    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let kinds = self.kinds_of(filter)?;
        self.connected(async |connection| {
            let mut letters = Vec::new();
            for kind in &kinds {
                walk(connection, kind, async |scan| {
                    take_matching(scan, kind, filter, limit, &mut letters).await
                })
                .await?;
            }
            Ok(letters)
        })
        .await
    }

    /// The dead letter of job `id`, in whichever kind's queue it is.
    pub async fn show(&self, id: &str) -> Result<Option<DeadLetter>, DeadLetterError> {
        let filter = Filter {
            id: Some(id.to_owned()),
            ..Filter::default()
        };
        Ok(self.list(&filter, 1).await?.pop())
    }

    /// Sends the dead letters the filter takes back to their work queues, each copy confirmed
    /// before its dead letter is removed.
    #[tracing::instrument(skip(self))]
    pub async fn replay(&self, filter: &Filter) -> Result<Replayed, DeadLetterError> {
        let kinds = self.kinds_of(filter)?;
        let done = self
            .connected(async |connection| {
                let mut done = Replayed::default();
                for kind in &kinds {
                    walk(connection, kind, async |scan| {
                        self.replay_from(scan, kind, filter, &mut done).await
                    })
                    .await?;
                }
                Ok(done)
            })
            .await?;
        tracing::info!(done.replayed, done.skipped, "dead letters replayed");
        Ok(done)
    }

    async fn replay_from(
        &self,
        scan: &mut Scan,
        kind: &str,
        filter: &Filter,
        done: &mut Replayed,
    ) -> Result<(), DeadLetterError> {
        while let Some(delivery) = scan.next().await? {
            if !filter.matches(&delivery) {
                done.skipped += 1;
                continue;
            }
            let properties = delivery
                .properties
                .clone()
                .with_headers(fresh_headers(delivery.properties.headers().as_ref()));
            let copy = Outgoing {
                exchange: EXCHANGE,
                routing_key: kind,
                body: &delivery.data,
                properties,
                // A copy of a job published before, not a new one.
                new_job: false,
            };
            self.publisher.send(copy).await?;
            scan.ack(&delivery).await?;
            done.replayed += 1;
        }
        Ok(())
    }

    /// Drops the dead letters the filter takes; how many. A filter on a kind only (or
    /// nothing) empties whole queues at once.
    #[tracing::instrument(skip(self))]
    pub async fn purge(&self, filter: &Filter) -> Result<u64, DeadLetterError> {
        let kinds = self.kinds_of(filter)?;
        // Beyond the kind, no condition: whole queues go at once.
        let whole_queues = Filter {
            kind: None,
            ..filter.clone()
        }
        .is_empty();
        let purged = self
            .connected(async |connection| {
                let mut purged = 0_u64;
                for kind in &kinds {
                    purged += walk(connection, kind, async |scan| {
                        if whole_queues {
                            Ok(u64::from(scan.purge().await?))
                        } else {
                            purge_matching(scan, filter).await
                        }
                    })
                    .await?;
                }
                Ok(purged)
            })
            .await?;
        tracing::warn!(purged, "dead letters purged");
        Ok(purged)
    }

    fn kinds_of(&self, filter: &Filter) -> Result<Vec<String>, DeadLetterError> {
        match &filter.kind {
            None => Ok(self.kinds.clone()),
            Some(kind) if self.kinds.contains(kind) => Ok(vec![kind.clone()]),
            Some(kind) => Err(DeadLetterError::UnknownKind(kind.clone())),
        }
    }

    /// Runs `work` on a connection of its own, closed afterwards whatever `work` returned.
    async fn connected<T>(
        &self,
        work: impl AsyncFnOnce(&Connection) -> Result<T, DeadLetterError>,
    ) -> Result<T, DeadLetterError> {
        let connection = self.connect().await?;
        let result = work(&connection).await;
        close(connection).await;
        result
    }

    async fn connect(&self) -> Result<Connection, DeadLetterError> {
        let limit = self.amqp.connect_timeout.saturating_mul(2);
        match tokio::time::timeout(limit, self.amqp.connect("dead letters")).await {
            Ok(result) => result.map_err(DeadLetterError::Connect),
            Err(_) => Err(DeadLetterError::Timeout {
                what: "connecting to RabbitMQ".into(),
                timeout: limit,
            }),
        }
    }
}

async fn purge_matching(scan: &mut Scan, filter: &Filter) -> Result<u64, DeadLetterError> {
    let mut purged = 0;
    while let Some(delivery) = scan.next().await? {
        if filter.matches(&delivery) {
            scan.ack(&delivery).await?;
            purged += 1;
        }
    }
    Ok(purged)
}

async fn close(connection: Connection) {
    let closing = connection.close(200, "done".into());
    let _ = tokio::time::timeout(OPERATION_TIMEOUT, closing).await;
}

/// A replayed job's headers: its failures forgotten (it gets its attempts afresh), the
/// replay counted, anything else the producer set kept.
fn fresh_headers(original: Option<&FieldTable>) -> FieldTable {
    const FORGOTTEN: [&str; 7] = [
        JOB_ATTEMPTS,
        JOB_ERROR,
        JOB_FAILED_AT,
        JOB_ORPHANED,
        JOB_CRASHES,
        JOB_NOT_BEFORE,
        DELIVERY_COUNT,
    ];
    let replays = header_u32(original, JOB_REPLAYED)
        .unwrap_or(0)
        .saturating_add(1);
    let mut headers = FieldTable::default();
    for (key, value) in original.into_iter().flat_map(FieldTable::inner) {
        let broker_death = key.as_str() == "x-death"
            || key.as_str().starts_with("x-first-death")
            || key.as_str().starts_with("x-last-death");
        if !broker_death && !FORGOTTEN.contains(&key.as_str()) {
            headers.insert(key.clone(), value.clone());
        }
    }
    headers.insert(JOB_REPLAYED.into(), AMQPValue::LongUInt(replays));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_job_forgets_its_failures_and_counts_its_replays() {
        let mut original = FieldTable::default();
        original.insert(JOB_ATTEMPTS.into(), AMQPValue::LongInt(5));
        original.insert(JOB_ERROR.into(), AMQPValue::LongString("smtp down".into()));
        original.insert("x-death".into(), AMQPValue::FieldArray(Default::default()));
        original.insert(
            "x-first-death-reason".into(),
            AMQPValue::LongString("rejected".into()),
        );
        original.insert(
            "traceparent".into(),
            AMQPValue::LongString("00-ab-cd-01".into()),
        );
        original.insert(JOB_REPLAYED.into(), AMQPValue::LongUInt(1));

        let fresh = fresh_headers(Some(&original));
        let keys: Vec<&str> = fresh.inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["traceparent", JOB_REPLAYED]);
        assert_eq!(header_u32(Some(&fresh), JOB_REPLAYED), Some(2));
        assert_eq!(
            header_u32(Some(&fresh_headers(None)), JOB_REPLAYED),
            Some(1)
        );
    }
}
