//! The photo app's side of the accounting, as its users see it: every accepted upload
//! `ready` (`GET /images/{id}`), its four jobs done, one confirmation mail for it in the
//! outbox, and its user's profile pointing at it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use futures_util::{StreamExt, stream};
use serde_json::Value;

use crate::books::Upload;
use crate::stack::Stack;

/// The figures of the accepted uploads.
#[derive(Debug, Default)]
pub struct PhotoFigures {
    pub accepted: usize,
    pub ready: usize,
    /// Jobs shown `done` (four per upload when all went well).
    pub jobs_done: usize,
    /// Runs beyond the first, summed over every job.
    pub reruns: u64,
    /// A few uploads that are not ready, with their jobs.
    pub not_ready: Vec<String>,
    pub profiles_ok: usize,
    pub mails: MailFigures,
}

/// The outbox against the accepted uploads.
#[derive(Debug, Default)]
pub struct MailFigures {
    /// Accepted uploads with exactly one mail.
    pub exactly_one: usize,
    /// Accepted uploads without a mail.
    pub missing: usize,
    /// Accepted uploads with more than one.
    pub duplicated: usize,
    /// Mails about uploads that were not accepted (refused with 503, then forgotten).
    pub about_refused: usize,
    /// Mails that name no image.
    pub unreadable: usize,
}

async fn get_json(stack: &Stack, path: &str) -> Value {
    match stack.http.get(format!("{}{path}", stack.base)).send().await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Reads the status and profile of every accepted upload, and the outbox.
pub async fn check(stack: &Stack, uploads: &[Upload]) -> anyhow::Result<PhotoFigures> {
    let mut figures = PhotoFigures {
        accepted: uploads.len(),
        ..PhotoFigures::default()
    };
    let looked: Vec<(&Upload, Value, Value)> = stream::iter(uploads)
        .map(|upload| async move {
            let status = get_json(stack, &format!("/images/{}", upload.image_id)).await;
            let profile = get_json(stack, &format!("/users/{}", upload.user)).await;
            (upload, status, profile)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (upload, status, profile) in looked {
        let jobs = status["jobs"].as_object().cloned().unwrap_or_default();
        figures.jobs_done += jobs.values().filter(|j| j["state"] == "done").count();
        figures.reruns += jobs
            .values()
            .map(|j| j["attempt"].as_u64().unwrap_or(1).saturating_sub(1))
            .sum::<u64>();
        if status["state"] == "ready" {
            figures.ready += 1;
        } else if figures.not_ready.len() < 5 {
            figures
                .not_ready
                .push(format!("{}: {status}", upload.image_id));
        }
        let avatar = profile["avatar_url"].as_str().unwrap_or_default();
        if avatar.contains(&upload.image_id) {
            figures.profiles_ok += 1;
        }
    }
    figures.mails = mails(&stack.outbox, uploads)?;
    Ok(figures)
}

/// Counts the mails naming each accepted upload.
fn mails(outbox: &Path, uploads: &[Upload]) -> anyhow::Result<MailFigures> {
    let mut per_image: HashMap<String, usize> = HashMap::new();
    let mut figures = MailFigures::default();
    let entries =
        std::fs::read_dir(outbox).with_context(|| format!("reading {}", outbox.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        match image_named(&text) {
            Some(id) => *per_image.entry(id).or_default() += 1,
            None => figures.unreadable += 1,
        }
    }
    for upload in uploads {
        match per_image.remove(&upload.image_id).unwrap_or(0) {
            0 => figures.missing += 1,
            1 => figures.exactly_one += 1,
            _ => figures.duplicated += 1,
        }
    }
    figures.about_refused = per_image.values().sum();
    Ok(figures)
}

/// The image id in a mail's status link (`…/images/<uuid>`), quoted-printable or not.
fn image_named(mail: &str) -> Option<String> {
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    unfolded.match_indices("/images/").find_map(|(at, found)| {
        let id = unfolded.get(at + found.len()..at + found.len() + 36)?;
        id.parse::<uuid::Uuid>().ok().map(|_| id.to_owned())
    })
}
