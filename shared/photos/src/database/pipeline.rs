//! The workers' side: what each handler records, and the race-free join that publishes
//! `update_profile_url` exactly when both thumbnails and moderation are through.
//!
//! Every write is idempotent, because a job can be delivered twice. The profile job is
//! guarded by a [`Claim`]: a row-locking transaction that is committed only after the job was
//! confirmed (milliseconds), so a crash in between releases the claim and the redelivered job
//! tries again. The mail is recorded `sending`, then `sent`, in statements of their own,
//! because an SMTP exchange can take a minute and must not hold a connection.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{PhotoStore, StoreError, bounded};
use crate::status::JobState;

/// What a handler needs to know about an image.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageFacts {
    /// Its owner.
    pub user_id: String,
    /// `jpeg`, `png`, `gif` or `webp`.
    pub format: String,
    /// Storage key of the original.
    pub original_key: String,
    /// Storage key of the metadata-free copy (under `pending/` until published).
    pub public_original_key: String,
    /// Thumbnail storage keys by size, once made.
    pub thumbnails: Option<Json<BTreeMap<String, String>>>,
    /// `approved`, `rejected`, or not yet decided.
    pub moderation: Option<String>,
    /// Whether its files were moved to where they are served (after its approval).
    pub published: bool,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

impl ImageFacts {
    /// The files to serve once approved: the metadata-free copy and the thumbnails made so far.
    #[must_use]
    pub fn served_files(&self) -> Vec<&str> {
        let thumbnails = self.thumbnails.iter().flat_map(|t| t.0.values());
        std::iter::once(&self.public_original_key)
            .chain(thumbnails)
            .map(String::as_str)
            .collect()
    }
}

/// A one-time effect in progress: commit after the effect, or drop to release it.
#[derive(Debug)]
pub struct Claim {
    tx: Transaction<'static, Postgres>,
    /// The store's bound, for the commit.
    timeout: Duration,
}

impl Claim {
    /// Makes the claim permanent: the effect happened.
    pub async fn commit(self) -> Result<(), StoreError> {
        bounded(self.timeout, "committing a claim", self.tx.commit()).await
    }
}

/// A job state change to show.
#[derive(Debug, Clone, Copy)]
pub struct JobRecord<'a> {
    /// The image.
    pub image_id: Uuid,
    /// The job's kind.
    pub kind: &'a str,
    /// Its new state.
    pub state: JobState,
    /// Its run.
    pub attempt: u32,
    /// Why it failed, if it did.
    pub error: Option<&'a str>,
}

impl PhotoStore {
    /// An image's facts; `None` if it does not exist (any more).
    pub async fn image_facts(&self, image_id: Uuid) -> Result<Option<ImageFacts>, StoreError> {
        let query = sqlx::query_as(
            "SELECT user_id, format, original_key, public_original_key, thumbnails, moderation,
                    published_at IS NOT NULL AS published, created_at
             FROM images WHERE id = $1",
        )
        .bind(image_id)
        .fetch_optional(self.db.pool());
        self.bounded("reading an image", query).await
    }

    /// Whether the upload was withdrawn after some of its jobs were queued.
    pub async fn is_withdrawn(&self, image_id: Uuid) -> Result<bool, StoreError> {
        let query = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM withdrawn_uploads WHERE image_id = $1)",
        )
        .bind(image_id)
        .fetch_one(self.db.pool());
        self.bounded("reading a withdrawal", query).await
    }

    /// Records that an approved image's files are where they are served, so its URLs may be
    /// listed.
    pub async fn mark_published(&self, image_id: Uuid) -> Result<(), StoreError> {
        let update = sqlx::query(
            "UPDATE images SET published_at = now()
             WHERE id = $1 AND moderation = 'approved' AND published_at IS NULL",
        )
        .bind(image_id)
        .execute(self.db.pool());
        self.bounded("publishing an image", update).await.map(drop)
    }

    /// Records the thumbnails' storage keys by size.
    pub async fn save_thumbnails(
        &self,
        image_id: Uuid,
        keys: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let update = sqlx::query("UPDATE images SET thumbnails = $2 WHERE id = $1")
            .bind(image_id)
            .bind(Json(keys))
            .execute(self.db.pool());
        self.bounded("saving thumbnails", update).await.map(drop)
    }

    /// Records the moderation verdict; the first verdict stands.
    pub async fn save_moderation(
        &self,
        image_id: Uuid,
        approved: bool,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let verdict = if approved { "approved" } else { "rejected" };
        let update = sqlx::query(
            "UPDATE images SET moderation = $2, moderation_reason = $3
             WHERE id = $1 AND moderation IS NULL",
        )
        .bind(image_id)
        .bind(verdict)
        .bind(reason)
        .execute(self.db.pool());
        self.bounded("saving a verdict", update).await.map(drop)
    }

    /// Claims publishing `update_profile_url` if thumbnails and an approval are both in and
    /// nobody claimed it yet. Called by each side after committing its own result: the row
    /// lock makes a concurrent claimant wait and then see the claim, so exactly one publishes.
    pub async fn claim_profile_update(&self, image_id: Uuid) -> Result<Option<Claim>, StoreError> {
        // In a task of its own (see `Database::in_task`): cancelled mid-`BEGIN`, a later
        // claim on the same connection would commit this one's half-done claim. A claim
        // nobody awaits any more is dropped, which rolls it back.
        let pool = self.db.pool().clone();
        let claiming = async move {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE images SET profile_job_claimed = true
                 WHERE id = $1 AND thumbnails IS NOT NULL AND moderation = 'approved'
                   AND NOT profile_job_claimed",
            )
            .bind(image_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO image_jobs (image_id, kind, state) VALUES ($1, 'update_profile_url', 'queued')
                 ON CONFLICT (image_id, kind) DO NOTHING",
            )
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
            Ok::<_, sqlx::Error>(Some(tx))
        };
        let tx = self
            .db
            .in_task("claiming the profile update", claiming)
            .await?;
        Ok(tx.map(|tx| self.claim(tx)))
    }

    fn claim(&self, tx: Transaction<'static, Postgres>) -> Claim {
        Claim {
            tx,
            timeout: self.db.timeout(),
        }
    }

    /// Makes `image_id` the user's avatar if it is approved and published, has thumbnails and is not older
    /// than the current avatar (profile jobs of two uploads may finish out of order).
    pub async fn set_avatar(&self, user_id: &str, image_id: Uuid) -> Result<bool, StoreError> {
        let update = sqlx::query(
            "UPDATE users u SET avatar_image_id = i.id, updated_at = now()
             FROM images i
             WHERE u.id = $1 AND i.id = $2 AND i.user_id = u.id
               AND i.moderation = 'approved' AND i.published_at IS NOT NULL
               AND i.thumbnails IS NOT NULL
               AND (u.avatar_image_id IS NULL OR u.avatar_image_id = i.id OR
                    (SELECT created_at FROM images WHERE id = u.avatar_image_id) <= i.created_at)",
        )
        .bind(user_id)
        .bind(image_id)
        .execute(self.db.pool());
        let updated = self.bounded("setting an avatar", update).await?;
        Ok(updated.rows_affected() > 0)
    }

    /// Records that the upload's confirmation mail is about to be sent; true if it was sent
    /// already (nothing to do). One short statement: no transaction is held while the mail
    /// server answers. A row left `sending` by a worker that died mid-send is sent again.
    pub async fn begin_email(&self, image_id: Uuid, recipient: &str) -> Result<bool, StoreError> {
        // The no-op update makes an existing row come back too, with its state.
        let upsert = sqlx::query_scalar::<_, String>(
            "INSERT INTO sent_emails (image_id, recipient, state) VALUES ($1, $2, 'sending')
             ON CONFLICT (image_id) DO UPDATE SET recipient = sent_emails.recipient
             RETURNING state",
        )
        .bind(image_id)
        .bind(recipient)
        .fetch_one(self.db.pool());
        let state = self.bounded("recording a mail's start", upsert).await?;
        Ok(state == "sent")
    }

    /// Records that the upload's confirmation mail went out.
    pub async fn email_sent(&self, image_id: Uuid) -> Result<(), StoreError> {
        let update = sqlx::query(
            "UPDATE sent_emails SET state = 'sent', sent_at = now() WHERE image_id = $1",
        )
        .bind(image_id)
        .execute(self.db.pool());
        self.bounded("recording a sent mail", update)
            .await
            .map(drop)
    }

    /// Shows a job's new state. Delivery is at least once, so events of a duplicate may
    /// arrive after the job finished: `done` is final (a duplicate's start or failure does
    /// not make a finished job look running or failed; its success is recorded), and
    /// `failed` gives way only to `done` (a dead letter shovelled back that then succeeds).
    ///
    /// `running` is committed without waiting for the WAL flush (`synchronous_commit` off
    /// for that one statement): it is a progress hint, written for every job, and a crash of
    /// PostgreSQL can lose at most the last fraction of a second of such hints, never an
    /// outcome. Every other state waits for the flush, which also flushes the hints before it.
    pub async fn record_job(&self, record: JobRecord<'_>) -> Result<(), StoreError> {
        let sync = if record.state == JobState::Running {
            "off"
        } else {
            "on"
        };
        // `set_config(.., true)` lasts until this statement's own transaction commits.
        let upsert = sqlx::query(
            "WITH durability AS (SELECT set_config('synchronous_commit', $6, true))
             INSERT INTO image_jobs (image_id, kind, state, attempt, error)
             SELECT $1, $2, $3, $4, $5 FROM durability
             ON CONFLICT (image_id, kind) DO UPDATE
             SET state = EXCLUDED.state, attempt = EXCLUDED.attempt, error = EXCLUDED.error, updated_at = now()
             WHERE image_jobs.state NOT IN ('done', 'failed') OR EXCLUDED.state = 'done'",
        )
        .bind(record.image_id)
        .bind(record.kind)
        .bind(record.state)
        .bind(i32::try_from(record.attempt).unwrap_or(i32::MAX))
        .bind(record.error)
        .bind(sync)
        .execute(self.db.pool());
        self.bounded("recording a job's state", upsert)
            .await
            .map(drop)
    }
}
