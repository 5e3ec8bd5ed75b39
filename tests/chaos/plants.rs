//! Planted poison: jobs that can never succeed and messages that are not jobs at all. Each
//! must end in its kind's dead-letter queue, once, with a reason that says why; nothing else
//! may end there.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use rabbitmq_jobs::{Job, Publisher};
use serde_json::json;
use support::chaos::{ChaosAbort, ChaosEffect, ChaosPanic};
use support::wait_until;

use crate::faults::Injected;

/// Raw messages go to the effect kind's queue, as a foreign producer's would.
const RAW_KIND: &str = ChaosEffect::KIND;
/// The oversize message's body: over the workers' 1 MiB `MAX_MESSAGE_SIZE`.
const OVERSIZE_BYTES: usize = 1024 * 1024 + 64 * 1024;
/// Longest wait for one AMQP step of a raw publish.
const STEP: Duration = Duration::from_secs(15);

/// A kind of poison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    /// `chaos_panic`: its handler panics every time.
    Panic,
    /// `chaos_abort`: its handler aborts the worker process every time.
    Abort,
    /// A body that is not JSON.
    MalformedJson,
    /// An envelope of a kind no worker knows.
    UnknownKind,
    /// An envelope of version 999.
    UnsupportedVersion,
    /// A valid envelope over the size limit.
    Oversize,
}

impl Plant {
    /// Every kind of poison, in the order they are listed.
    pub const ALL: [Plant; 6] = [
        Self::Panic,
        Self::Abort,
        Self::MalformedJson,
        Self::UnknownKind,
        Self::UnsupportedVersion,
        Self::Oversize,
    ];

    /// The kind whose dead-letter queue it must end in.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Panic => ChaosPanic::KIND,
            Self::Abort => ChaosAbort::KIND,
            _ => RAW_KIND,
        }
    }

    /// Its dead letter's `x-job-error` must contain one of these.
    pub fn expected_reasons(self) -> &'static [&'static str] {
        match self {
            Self::Panic => &["panicked"],
            Self::Abort => &["lost its worker"],
            Self::MalformedJson => &["malformed job"],
            Self::UnknownKind => &["unknown kind"],
            Self::UnsupportedVersion => &["unsupported version"],
            Self::Oversize => &["over the size limit"],
        }
    }

    /// How long it may take to reach its dead-letter queue.
    pub fn patience(self) -> Duration {
        match self {
            Self::Abort => Duration::from_secs(180),
            Self::Panic => Duration::from_secs(60),
            _ => Duration::from_secs(30),
        }
    }
}

impl fmt::Display for Plant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Panic => "a job whose handler panics every time",
            Self::Abort => "a job that aborts its worker process every time",
            Self::MalformedJson => "malformed JSON",
            Self::UnknownKind => "an envelope of an unknown kind",
            Self::UnsupportedVersion => "an envelope of version 999",
            Self::Oversize => "a valid envelope over the size limit (1.06 MiB)",
        })
    }
}

/// A plant in the broker.
#[derive(Debug, Clone)]
pub struct Planted {
    pub plant: Plant,
    /// Its `message_id` (the envelope's id where it has one).
    pub id: String,
}

/// Publishes `plant`: the typed ones through `publisher`, the raw ones over a plain
/// connection to `amqp_url`, confirmed and mandatory.
pub async fn plant(plant: Plant, publisher: &Publisher, amqp_url: &str) -> anyhow::Result<Planted> {
    let id = match plant {
        Plant::Panic => publisher
            .publish(&ChaosPanic { plant: 1 })
            .await?
            .to_string(),
        Plant::Abort => publisher
            .publish(&ChaosAbort { plant: 1 })
            .await?
            .to_string(),
        raw => {
            let id = uuid::Uuid::new_v4().to_string();
            publish_raw(amqp_url, &id, &raw_body(raw, &id)).await?;
            id
        }
    };
    Ok(Planted { plant, id })
}

fn envelope(id: &str, kind: &str, version: u32, payload: serde_json::Value) -> Vec<u8> {
    let created_at = chrono::Utc::now().to_rfc3339();
    json!({"id": id, "kind": kind, "version": version, "created_at": created_at, "payload": payload})
        .to_string()
        .into_bytes()
}

fn raw_body(plant: Plant, id: &str) -> Vec<u8> {
    match plant {
        Plant::UnknownKind => envelope(id, "chaos_unknown", 1, json!({"seq": 0})),
        Plant::UnsupportedVersion => envelope(id, RAW_KIND, 999, json!({"seq": 0})),
        Plant::Oversize => {
            let padding = "x".repeat(OVERSIZE_BYTES);
            envelope(id, RAW_KIND, 1, json!({"seq": 0, "padding": padding}))
        }
        _ => format!("{{\"id\": \"{id}\", \"kind\": \"{RAW_KIND}\", \"payload\": {{").into_bytes(),
    }
}

async fn publish_raw(amqp_url: &str, id: &str, body: &[u8]) -> anyhow::Result<()> {
    let connect = crate::stack::connect(amqp_url, "chaos plants");
    let connection = tokio::time::timeout(STEP, connect)
        .await
        .context("connecting for a raw publish timed out")??;
    let channel = tokio::time::timeout(STEP, connection.create_channel())
        .await
        .context("opening a channel timed out")??;
    tokio::time::timeout(
        STEP,
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .context("confirm.select timed out")??;
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(id.into())
        .with_type(RAW_KIND.into());
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let publish = async {
        channel
            .basic_publish(
                rabbitmq_jobs::EXCHANGE.into(),
                RAW_KIND.into(),
                options,
                body,
                properties,
            )
            .await?
            .await
    };
    let confirm = tokio::time::timeout(STEP, publish)
        .await
        .context("the raw publish's confirm timed out")??;
    let _ = tokio::time::timeout(STEP, connection.close(200, "planted".into())).await;
    if !confirm.is_ack() {
        bail!("the broker nacked the raw message {id}");
    }
    if confirm.take_message().is_some() {
        bail!("the raw message {id} was unroutable");
    }
    Ok(())
}

impl crate::faults::Injector<'_> {
    /// Plants `plant` and waits until it settled: in its dead-letter queue, or (wrongly)
    /// handled as a job.
    pub(crate) async fn plant(&self, plant: Plant) -> anyhow::Result<Injected> {
        let management = self.stack.management();
        let dlq = rabbitmq_jobs::dead_letter_queue(plant.kind());
        let dead = || async {
            management
                .queue("/", &dlq)
                .await
                .map(|q| q.messages_ready)
                .unwrap_or(0)
        };
        let before = dead().await;
        let planted = self::plant(plant, &self.stack.publisher, &self.stack.amqp_url).await?;
        self.planted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(planted.clone());
        let began = tokio::time::Instant::now();
        let pool = &self.stack.pool;
        let settled = wait_until(plant.patience(), "the plant to settle", || async {
            dead().await > before
                || crate::records::is_handled(pool, &planted.id)
                    .await
                    .unwrap_or(false)
        })
        .await;
        let runs = crate::records::runs_of(pool, &planted.id)
            .await
            .unwrap_or(0);
        let handled = crate::records::is_handled(pool, &planted.id)
            .await
            .unwrap_or(false);
        let mut injected = Injected::now(match (&settled, handled) {
            (_, true) => format!("{} was handled as a job, not dead-lettered", planted.id),
            (Ok(()), false) => format!(
                "{} dead-lettered after {:.1} s, {runs} runs",
                planted.id,
                began.elapsed().as_secs_f64()
            ),
            (Err(_), false) => format!("{} not settled", planted.id),
        });
        if let Err(e) = settled {
            injected.misses.push(format!("{plant}: {e}"));
        }
        Ok(injected)
    }
}
