//! The dead-letter queues at the end: every message read off every `jobs.<kind>.dlq`, and
//! judged: each plant exactly once, in its kind's queue, with its reason; nothing else.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, anyhow};
use lapin::options::{BasicAckOptions, BasicGetOptions};

use crate::plants::Planted;
use crate::stack::Stack;

/// Longest wait for one AMQP step.
const STEP: Duration = Duration::from_secs(15);

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub queue: String,
    /// Its `message_id`.
    pub id: String,
    /// `x-job-error`.
    pub reason: String,
}

/// Takes every message off every dead-letter queue.
pub async fn read_all(stack: &Stack) -> anyhow::Result<Vec<DeadLetter>> {
    let queues = stack
        .management()
        .queues("/")
        .await
        .map_err(|e| anyhow!(e))?;
    let connect = crate::stack::connect(&stack.amqp_url, "chaos dlq reader");
    let connection = tokio::time::timeout(STEP, connect)
        .await
        .context("connecting to read the DLQs timed out")??;
    let channel = tokio::time::timeout(STEP, connection.create_channel()).await??;
    let mut letters = Vec::new();
    for queue in queues.iter().filter(|q| q.name.ends_with(".dlq")) {
        loop {
            let get = channel.basic_get(queue.name.as_str().into(), BasicGetOptions::default());
            let Some(message) = tokio::time::timeout(STEP, get).await?? else {
                break;
            };
            let properties = &message.delivery.properties;
            letters.push(DeadLetter {
                queue: queue.name.clone(),
                id: properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: rabbitmq_jobs::header_str(
                    properties.headers().as_ref(),
                    rabbitmq_jobs::JOB_ERROR,
                )
                .unwrap_or_default(),
            });
            tokio::time::timeout(STEP, message.delivery.ack(BasicAckOptions::default())).await??;
        }
    }
    let _ = tokio::time::timeout(STEP, connection.close(200, "read".into())).await;
    Ok(letters)
}

/// The judgement of the dead-letter queues.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Markdown rows: queue, id, reason, verdict.
    pub rows: Vec<String>,
    pub misses: Vec<String>,
    pub plants_ok: usize,
    pub unexpected: usize,
}

/// Each plant must be there once with its reason; anything else is a miss. A dead letter
/// that names an image is told apart by whether the image is one of `accepted_images`.
pub fn judge(
    letters: &[DeadLetter],
    planted: &[Planted],
    accepted_images: &HashSet<String>,
) -> Verdict {
    let mut verdict = Verdict::default();
    judge_plants(letters, planted, &mut verdict);
    judge_others(letters, planted, accepted_images, &mut verdict);
    verdict
}

/// Each plant once, in its kind's queue, with its reason.
fn judge_plants(letters: &[DeadLetter], planted: &[Planted], verdict: &mut Verdict) {
    for plant in planted {
        let found: Vec<&DeadLetter> = letters.iter().filter(|l| l.id == plant.id).collect();
        let queue = rabbitmq_jobs::dead_letter_queue(plant.plant.kind());
        let reasons = plant.plant.expected_reasons();
        let judged = match found.as_slice() {
            [] => format!("MISS: not in any DLQ (expected in {queue})"),
            [one] if one.queue != queue => format!("MISS: in {}, expected {queue}", one.queue),
            [one] if !reasons.iter().any(|r| one.reason.contains(r)) => {
                format!("MISS: reason lacks {reasons:?}")
            }
            [_] => "ok".to_owned(),
            many => format!("MISS: dead-lettered {} times", many.len()),
        };
        let reason = found.first().map_or("-", |l| l.reason.as_str());
        verdict.rows.push(format!(
            "| {} | {queue} | {} | {} | {judged} |",
            plant.plant,
            plant.id,
            cell(reason)
        ));
        if judged == "ok" {
            verdict.plants_ok += 1;
        } else {
            verdict
                .misses
                .push(format!("plant {} ({}): {judged}", plant.plant, plant.id));
        }
    }
}

/// Whatever was not planted, grouped by queue and kind of reason: each group a miss.
fn judge_others(
    letters: &[DeadLetter],
    planted: &[Planted],
    accepted_images: &HashSet<String>,
    verdict: &mut Verdict,
) {
    let extras: Vec<&DeadLetter> = letters
        .iter()
        .filter(|l| !planted.iter().any(|p| p.id == l.id))
        .collect();
    verdict.unexpected = extras.len();
    let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for letter in &extras {
        groups
            .entry((
                letter.queue.clone(),
                reason_kind(&letter.reason, accepted_images),
            ))
            .or_default()
            .push(&letter.id);
    }
    for ((queue, reason), ids) in groups {
        let shown: Vec<&str> = ids.iter().take(3).copied().collect();
        verdict.rows.push(format!(
            "| not planted × {} | {queue} | {}{} | {} | MISS |",
            ids.len(),
            shown.join(", "),
            if ids.len() > 3 { ", …" } else { "" },
            cell(&reason)
        ));
        verdict.misses.push(format!(
            "{} job(s) dead-lettered in {queue} that were not planted: {reason}",
            ids.len()
        ));
    }
}

/// A reason without the ids and numbers that differ between jobs, to group by; one that
/// names an image says whether its upload had been accepted.
fn reason_kind(reason: &str, accepted_images: &HashSet<String>) -> String {
    let images: Vec<&str> = reason
        .split_whitespace()
        .filter(|w| w.parse::<uuid::Uuid>().is_ok())
        .collect();
    let whose = match images.first() {
        Some(image) if accepted_images.contains(*image) => " [an accepted upload]",
        Some(_) => " [an upload that was not accepted: answered 503, then forgotten]",
        None => "",
    };
    let general = reason
        .split_whitespace()
        .map(|word| {
            if word.chars().any(|c| c.is_ascii_digit()) {
                "…"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("{general}{whose}")
}

/// Text safe in a markdown table cell.
pub fn cell(text: &str) -> String {
    let short: String = text.chars().take(160).collect();
    short.replace('|', "\\|").replace('\n', " ")
}
