//! What the clients were promised, as they saw it: every accepted job id and upload, and
//! every answer an upload got, with its time. The final accounting compares the system's
//! records against these books.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rabbitmq_jobs::JobId;

/// An upload answered 202.
#[derive(Debug, Clone)]
pub struct Upload {
    pub user: String,
    pub image_id: String,
}

/// One answer to an upload request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// When the answer came.
    pub at: DateTime<Utc>,
    /// The HTTP status; 0 when no answer came (transport error or client timeout).
    pub status: u16,
    pub latency: Duration,
    /// The body is JSON with an `error` string.
    pub json_error: bool,
}

/// The books of one run, shared by the load, the faults and the accounting.
#[derive(Debug, Default)]
pub struct Books {
    effects: Mutex<Vec<JobId>>,
    uploads: Mutex<Vec<Upload>>,
    answers: Mutex<Vec<Answer>>,
    /// Upload problems that are misses: unexpected answers, uploads given up.
    problems: Mutex<Vec<String>>,
    /// Publishes of effect jobs that failed and were retried.
    pub effect_publish_errors: AtomicU64,
    /// The next `chaos_effect` sequence number.
    next_seq: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Books {
    /// Reserves `n` sequence numbers for effect jobs.
    pub fn take_seqs(&self, n: u64) -> std::ops::Range<u64> {
        let first = self.next_seq.fetch_add(n, Ordering::SeqCst);
        first..first + n
    }

    pub fn accept_effects(&self, ids: &[JobId]) {
        lock(&self.effects).extend_from_slice(ids);
    }

    pub fn accept_upload(&self, upload: Upload) {
        lock(&self.uploads).push(upload);
    }

    pub fn answer(&self, answer: Answer) {
        lock(&self.answers).push(answer);
    }

    pub fn problem(&self, problem: String) {
        lock(&self.problems).push(problem);
    }

    pub fn effects(&self) -> Vec<JobId> {
        lock(&self.effects).clone()
    }

    pub fn effect_count(&self) -> usize {
        lock(&self.effects).len()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        lock(&self.uploads).clone()
    }

    pub fn upload_count(&self) -> usize {
        lock(&self.uploads).len()
    }

    pub fn answers(&self) -> Vec<Answer> {
        lock(&self.answers).clone()
    }

    pub fn problems(&self) -> Vec<String> {
        lock(&self.problems).clone()
    }

    /// Uploads answered `status` at or after `since`.
    pub fn answered_since(&self, status: u16, since: DateTime<Utc>) -> usize {
        lock(&self.answers)
            .iter()
            .filter(|a| a.status == status && a.at >= since)
            .count()
    }

    /// The first answer `status` at or after `since`.
    pub fn first_since(&self, status: u16, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        lock(&self.answers)
            .iter()
            .filter(|a| a.status == status && a.at >= since)
            .map(|a| a.at)
            .min()
    }
}
