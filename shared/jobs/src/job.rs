//! What makes a Rust type a job: a kind and a schema version fixed at compile time.
//!
//! Publishing and handling are generic over [`Job`], so a type that is not a job
//! cannot be published, and a handler cannot be registered for the wrong payload.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::retry::RetryPolicy;

/// A job payload: the `payload` of the wire envelope.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use rabbitmq_jobs::Job;
///
/// #[derive(Serialize, Deserialize)]
/// struct ResizeJob { image: String }
///
/// impl Job for ResizeJob {
///     const KIND: &'static str = "resize";
///     const VERSION: u32 = 1;
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The routing key and the queue's name (`jobs.<KIND>`): `[a-z0-9_]`, 1 to 64 characters.
    const KIND: &'static str;
    /// The payload's schema version, written into every envelope.
    const VERSION: u32;
    /// The oldest envelope version this payload type still reads (default: only [`Self::VERSION`]).
    const MIN_VERSION: u32 = Self::VERSION;
    /// How failures of this kind are retried, unless the worker's settings override it.
    const RETRY: RetryPolicy = RetryPolicy::DEFAULT;
    /// How long one run may take before it counts as a retryable failure.
    const TIMEOUT: Duration = Duration::from_secs(300);
}

/// The unique id of one published job (the envelope's `id`, the message's `message_id`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh random id.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether `kind` can name a job: it becomes part of queue and exchange names.
#[must_use]
pub fn is_valid_kind(kind: &str) -> bool {
    (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
