//! The load: real uploads through the HTTP API, as a client that retries a 503 after a short
//! wait, and `chaos_effect` jobs through the typed publisher, retried until confirmed. Both
//! are paced to span the fault schedule and go on until it is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rabbitmq_jobs::Publisher;
use serde_json::Value;
use support::chaos::ChaosEffect;
use support::images::jpeg_photo;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::books::{Answer, Books, Upload};

/// A client's pause before it tries a refused upload again.
const CLIENT_BACKOFF: Duration = Duration::from_millis(500);
/// How long one upload is tried before the client gives up (a miss).
const UPLOAD_PATIENCE: Duration = Duration::from_secs(240);
/// How long one batch of effect jobs is tried before the harness gives up (a miss).
const PUBLISH_PATIENCE: Duration = Duration::from_secs(240);
/// Uploads in flight at most.
const UPLOADS_IN_FLIGHT: usize = 32;

/// Sends uploads like a client of the app.
#[derive(Debug, Clone)]
pub struct Uploader {
    pub http: reqwest::Client,
    pub base: String,
    pub books: Arc<Books>,
}

impl Uploader {
    /// One POST of the picture of `seed` for `user`: the answer, recorded in the books.
    pub async fn post(&self, user: &str, seed: u32) -> (Answer, Option<String>) {
        let started = Instant::now();
        let bytes = jpeg_photo(320, 240, seed).unwrap_or_default();
        let part = reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg");
        let sent = self
            .http
            .post(format!("{}/users/{user}/avatar", self.base))
            .multipart(reqwest::multipart::Form::new().part("image", part))
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let (status, body) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
            Err(error) => (0, Value::String(error.to_string())),
        };
        let answer = Answer {
            at: chrono::Utc::now(),
            status,
            latency: started.elapsed(),
            json_error: body["error"].is_string(),
        };
        self.books.answer(answer.clone());
        let image_id = body["image_id"].as_str().map(str::to_owned);
        (
            answer,
            if status == 202 {
                image_id
            } else {
                body.to_string().into()
            },
        )
    }

    /// Uploads the picture of `seed` for user `chaos-u<seed>` until it is accepted.
    pub async fn upload(&self, seed: u32) {
        let user = format!("chaos-u{seed}");
        let deadline = Instant::now() + UPLOAD_PATIENCE;
        loop {
            let (answer, detail) = self.post(&user, seed).await;
            match (answer.status, detail) {
                (202, Some(image_id)) => {
                    self.books.accept_upload(Upload { user, image_id });
                    return;
                }
                (503, _) => {}
                (status, detail) => self.books.problem(format!(
                    "upload for {user} answered {status}: {}",
                    detail.unwrap_or_default()
                )),
            }
            if Instant::now() >= deadline {
                self.books.problem(format!(
                    "upload for {user} never accepted in {UPLOAD_PATIENCE:?}"
                ));
                return;
            }
            tokio::time::sleep(CLIENT_BACKOFF).await;
        }
    }
}

/// Publishes `n` effect jobs, retrying until the broker confirmed them all; records their ids.
pub async fn publish_effects(publisher: &Publisher, books: &Books, n: u64) {
    let jobs: Vec<ChaosEffect> = books.take_seqs(n).map(|seq| ChaosEffect { seq }).collect();
    let deadline = Instant::now() + PUBLISH_PATIENCE;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(90), publisher.publish_batch(&jobs));
        match attempt.await {
            Ok(Ok(ids)) => return books.accept_effects(&ids),
            Ok(Err(_)) | Err(_) => {
                books.effect_publish_errors.fetch_add(1, Ordering::SeqCst);
            }
        }
        if Instant::now() >= deadline {
            books.problem(format!(
                "{n} effect jobs never confirmed in {PUBLISH_PATIENCE:?}"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How the load is paced, and when it may stop.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Uploads to send at least.
    pub uploads: u32,
    /// Steady effect jobs to publish at least.
    pub effects: u32,
    /// The planned length of the load phase.
    pub length: Duration,
    /// Set once the fault schedule is over: the load stops when it also reached its counts.
    pub schedule_done: Arc<AtomicBool>,
}

impl Pace {
    fn over(&self, sent: u64, target: u32) -> bool {
        sent >= u64::from(target) && self.schedule_done.load(Ordering::SeqCst)
    }

    /// How many of `target` are due `started.elapsed()` into the planned length.
    fn due(&self, target: u32, started: Instant) -> u64 {
        let share = started.elapsed().as_secs_f64() / self.length.as_secs_f64().max(1.0);
        (f64::from(target) * share) as u64
    }
}

/// Sends uploads at the pace (catching up after a fault held them back, at most
/// `UPLOADS_IN_FLIGHT` at once) until the schedule is over and the count reached.
pub async fn drive_uploads(uploader: Uploader, pace: Pace) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let slots = Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT));
    let mut running = JoinSet::new();
    let mut seed: u32 = 0;
    while !pace.over(u64::from(seed), pace.uploads) {
        tick.tick().await;
        let due = pace.due(pace.uploads, started);
        while u64::from(seed) < due {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let uploader = uploader.clone();
            running.spawn(async move {
                uploader.upload(seed).await;
                drop(slot);
            });
            seed += 1;
        }
    }
    while running.join_next().await.is_some() {}
}

/// Publishes effect jobs in small batches, as many as are due at the pace (batches held up
/// by a fault are made up for), until the schedule is over and the count reached.
pub async fn drive_effects(publisher: Publisher, books: Arc<Books>, pace: Pace) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent = 0;
    while !pace.over(sent, pace.effects) {
        tick.tick().await;
        let n = pace
            .due(pace.effects, started)
            .saturating_sub(sent)
            .clamp(1, 500);
        publish_effects(&publisher, &books, n).await;
        sent += n;
    }
}
