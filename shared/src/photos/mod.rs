//! The photo-sharing domain: the jobs an avatar upload fans out into.
//!
//! The job machinery knows nothing of photos; this module only implements [`Job`](crate::Job)
//! for its payloads.

pub mod imaging;
mod jobs;

pub use self::jobs::{EmailJob, KINDS, ModerationJob, ProfileUrlJob, ThumbnailJob};
