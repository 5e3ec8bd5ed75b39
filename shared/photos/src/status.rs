//! What the app shows about an upload and a user, derived from the stored facts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use dbkit::{JobState, JobStatus};

use super::files::{public_url, published_key};
use super::jobs::{ModerationJob, ProfileUrlJob, ThumbnailJob};
use rabbitmq_jobs::Job;

/// An upload as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    /// Jobs are queued or running.
    Processing,
    /// Thumbnails made, content approved, profile updated.
    Ready,
    /// The content filter refused it; it never becomes an avatar.
    Rejected,
    /// A job it needs failed for good (see its `jobs`).
    Failed,
}

/// `GET /images/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageStatus {
    /// The upload's id.
    pub image_id: Uuid,
    /// Its owner.
    pub user_id: String,
    /// The upload as a whole.
    pub state: ImageState,
    /// Each job by kind.
    pub jobs: BTreeMap<String, JobStatus>,
    /// The served copy of the original, without metadata.
    pub original_url: Option<String>,
    /// Thumbnail URLs by size (px), once made.
    pub thumbnails: BTreeMap<String, String>,
    /// Why it is not shown, when rejected: the same notice for every rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// `GET /users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserProfile {
    /// The user's id.
    pub user_id: String,
    /// The avatar (largest thumbnail), null until an upload passed thumbnails and moderation.
    pub avatar_url: Option<String>,
    /// The avatar's thumbnails by size.
    pub thumbnails: BTreeMap<String, String>,
}

/// What the uploader of a rejected image is told. It names nothing of the filter's match.
pub const REJECTION_NOTICE: &str = "the image was refused by content moderation";

/// A published image's thumbnail storage keys by size, as stored, turned into URLs.
#[must_use]
pub fn thumbnail_urls(keys: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    keys.iter()
        .filter_map(|(size, key)| Some((size.clone(), public_url(&published_key(key))?)))
        .collect()
}

/// The largest thumbnail's URL.
#[must_use]
pub fn largest(thumbnails: &BTreeMap<String, String>) -> Option<String> {
    thumbnails
        .iter()
        .max_by_key(|(size, _)| size.parse::<u32>().unwrap_or(0))
        .map(|(_, url)| url.clone())
}

/// The upload's state from its facts and jobs. A `stalled` job is still on its way (the
/// broker delivers it again), so like `queued`, `running` and `retrying` it leaves the
/// upload `processing`; only `failed` fails it.
#[must_use]
pub fn image_state(
    moderation: Option<&str>,
    has_thumbnails: bool,
    jobs: &BTreeMap<String, JobStatus>,
) -> ImageState {
    let state_of = |kind: &str| jobs.get(kind).map(|j| j.state);
    let needed = [ThumbnailJob::KIND, ModerationJob::KIND, ProfileUrlJob::KIND];
    if moderation == Some("rejected") {
        ImageState::Rejected
    } else if needed
        .iter()
        .any(|kind| state_of(kind) == Some(JobState::Failed))
    {
        ImageState::Failed
    } else if has_thumbnails
        && moderation == Some("approved")
        && state_of(ProfileUrlJob::KIND) == Some(JobState::Done)
    {
        ImageState::Ready
    } else {
        ImageState::Processing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(states: &[(&str, JobState)]) -> BTreeMap<String, JobStatus> {
        states
            .iter()
            .map(|(kind, state)| {
                let status = JobStatus {
                    state: *state,
                    attempt: 1,
                    error: None,
                };
                ((*kind).to_owned(), status)
            })
            .collect()
    }

    #[test]
    fn an_upload_with_a_stalled_job_is_still_processing_and_a_failed_one_fails_it() {
        let stalled = jobs(&[
            (ThumbnailJob::KIND, JobState::Done),
            (ModerationJob::KIND, JobState::Stalled),
        ]);
        assert_eq!(image_state(None, true, &stalled), ImageState::Processing);
        let failed = jobs(&[
            (ThumbnailJob::KIND, JobState::Stalled),
            (ModerationJob::KIND, JobState::Failed),
        ]);
        assert_eq!(image_state(None, false, &failed), ImageState::Failed);
    }
}
