//! The producer's side: recording an upload and reading what the app shows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use dbkit::{JobRow, WriteError, job_statuses};
use rabbitmq_jobs::EncodedJob;
use rabbitmq_jobs::outbox::Outbox;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use super::{PhotoStore, StoreError};
use crate::files::{public_url, published_key};
use crate::status::{
    ImageStatus, REJECTION_NOTICE, UserProfile, image_state, largest, thumbnail_urls,
};

/// An upload that passed its checks and is stored.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    /// Its new id.
    pub image_id: Uuid,
    /// Its owner (created on first upload).
    pub user_id: &'a str,
    /// `jpeg`, `png`, `gif` or `webp`.
    pub format: &'a str,
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// Bytes uploaded.
    pub byte_size: usize,
    /// Storage key of the original.
    pub original_key: &'a str,
    /// Storage key of the served copy.
    pub public_original_key: &'a str,
    /// The jobs about to be published for it.
    pub kinds: &'a [&'a str],
}

/// Thumbnail storage keys by size, as the `thumbnails` column holds them.
type StoredThumbnails = Json<BTreeMap<String, String>>;

#[derive(sqlx::FromRow)]
struct ImageRow {
    user_id: String,
    public_original_key: String,
    thumbnails: Option<StoredThumbnails>,
    moderation: Option<String>,
    published: bool,
    created_at: DateTime<Utc>,
}

/// The user (on first upload), the image, and its jobs as queued: one statement, whose
/// foreign keys are checked at its end, when the user row exists.
/// Its values are bound as copies, so the statement can run in a task of its own.
fn insert_upload(upload: &NewUpload<'_>) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "WITH new_user AS (
             INSERT INTO users (id) VALUES ($2) ON CONFLICT (id) DO NOTHING
         ), new_image AS (
             INSERT INTO images (id, user_id, format, width, height, byte_size, original_key, public_original_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         )
         INSERT INTO image_jobs (image_id, kind, state)
         SELECT $1, kind, 'queued' FROM unnest($9::text[]) AS kind",
    )
    .bind(upload.image_id)
    .bind(upload.user_id.to_owned())
    .bind(upload.format.to_owned())
    .bind(db_int(upload.width))
    .bind(db_int(upload.height))
    .bind(i64::try_from(upload.byte_size).unwrap_or(i64::MAX))
    .bind(upload.original_key.to_owned())
    .bind(upload.public_original_key.to_owned())
    .bind(upload.kinds.iter().map(|k| (*k).to_owned()).collect::<Vec<String>>())
}

fn db_int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl PhotoStore {
    /// Records the user (on first upload), the image and its jobs as queued, and writes the
    /// jobs into the outbox, in one transaction: the upload exists with its jobs or not at
    /// all, whether or not the broker is reachable.
    pub async fn record_upload(
        &self,
        upload: &NewUpload<'_>,
        outbox: &Outbox,
        jobs: Vec<EncodedJob>,
    ) -> Result<(), WriteError> {
        let insert = insert_upload(upload);
        let (pool, outbox) = (self.db.pool().clone(), outbox.clone());
        let writing = async move {
            let mut tx = pool.begin().await?;
            insert.execute(&mut *tx).await?;
            outbox.enqueue(&mut tx, &jobs).await?;
            tx.commit().await?;
            Ok(())
        };
        self.db
            .write_with_jobs("recording an upload", writing)
            .await
    }

    /// Records the upload as [`PhotoStore::record_upload`] does, without its jobs (the
    /// caller publishes them itself, and forgets the upload if that fails).
    pub async fn record_upload_alone(&self, upload: &NewUpload<'_>) -> Result<(), StoreError> {
        let insert = insert_upload(upload).execute(self.db.pool());
        self.bounded("recording an upload", insert).await.map(drop)
    }

    /// Withdraws an upload whose jobs could not all be published (the client is told to
    /// retry): the image is removed, and jobs already queued for it find it withdrawn.
    pub async fn forget_upload(&self, image_id: Uuid) -> Result<(), StoreError> {
        // One statement: the image goes, and its tombstone tells the jobs already queued for
        // it that there is nothing to do.
        let delete = sqlx::query(
            "WITH gone AS (DELETE FROM images WHERE id = $1)
             INSERT INTO withdrawn_uploads (image_id) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(image_id)
        .execute(self.db.pool());
        self.bounded("forgetting an upload", delete).await.map(drop)
    }

    /// What `GET /images/{id}` shows; `None` for an unknown image.
    pub async fn image_status(&self, image_id: Uuid) -> Result<Option<ImageStatus>, StoreError> {
        let reading = async {
            let Some(row) = sqlx::query_as::<_, ImageRow>(
                "SELECT user_id, public_original_key, thumbnails, moderation,
                        published_at IS NOT NULL AS published, created_at
                 FROM images WHERE id = $1",
            )
            .bind(image_id)
            .fetch_optional(self.db.pool())
            .await?
            else {
                return Ok(None);
            };
            let jobs = sqlx::query_as::<_, JobRow>(
                "SELECT kind, state, attempt, error FROM image_jobs WHERE image_id = $1",
            )
            .bind(image_id)
            .fetch_all(self.db.pool())
            .await?;
            Ok(Some((row, jobs)))
        };
        let found = self.bounded("reading an image's status", reading).await?;
        Ok(found.map(|(row, jobs)| status_of(image_id, row, jobs)))
    }

    /// What `GET /users/{id}` shows; `None` for a user who never uploaded.
    pub async fn user_profile(&self, user_id: &str) -> Result<Option<UserProfile>, StoreError> {
        let query = sqlx::query_as(
            "SELECT i.thumbnails FROM users u LEFT JOIN images i ON i.id = u.avatar_image_id
             WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.db.pool());
        let row: Option<(Option<StoredThumbnails>,)> =
            self.bounded("reading a profile", query).await?;
        Ok(row.map(|(thumbnails,)| {
            let thumbnails = thumbnails.map(|t| thumbnail_urls(&t.0)).unwrap_or_default();
            UserProfile {
                user_id: user_id.to_owned(),
                avatar_url: largest(&thumbnails),
                thumbnails,
            }
        }))
    }
}

/// The image's status from its row and its jobs' rows.
fn status_of(image_id: Uuid, row: ImageRow, jobs: Vec<JobRow>) -> ImageStatus {
    let jobs = job_statuses(jobs);
    let has_thumbnails = row.thumbnails.is_some();
    // Nothing is listed before moderation approved the upload and its files were moved to
    // where they are served.
    let thumbnails = row
        .thumbnails
        .filter(|_| row.published)
        .map(|t| thumbnail_urls(&t.0))
        .unwrap_or_default();
    let original_url = if row.published {
        public_url(&published_key(&row.public_original_key))
    } else {
        None
    };
    let rejected = row.moderation.as_deref() == Some("rejected");
    ImageStatus {
        image_id,
        user_id: row.user_id,
        state: image_state(row.moderation.as_deref(), has_thumbnails, &jobs),
        jobs,
        original_url,
        thumbnails,
        // The verdict's own reason (which entry matched, at what distance) is for moderators:
        // shown to the uploader, it would let them tune a banned picture until it passes.
        rejection_reason: rejected.then(|| REJECTION_NOTICE.to_owned()),
        created_at: row.created_at,
    }
}
