//! The photo domain's part of the database: its migrations, and the rights each app needs
//! on its tables (`db-setup` grants exactly these; see [`dbkit::set_up_database`]).

use dbkit::Schema;
use sqlx::migrate::Migrator;

/// The migrations in `shared/photos/migrations`, built in. Their history is sqlx's default
/// table, `_sqlx_migrations`, which databases deployed before there were other domains have.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What the producer's statements use: recording an upload (its user on first upload, the
/// image, its jobs as queued), withdrawing one, and reading status and profiles. Deleting
/// an image cascades to its jobs through the foreign key, which runs as the tables' owner.
const PRODUCER_RIGHTS: &[(&str, &str)] = &[
    ("users", "SELECT, INSERT"),
    ("images", "SELECT, INSERT, DELETE"),
    ("image_jobs", "SELECT, INSERT"),
    ("withdrawn_uploads", "INSERT"),
];

/// What the workers' statements use: reading an image, recording results, states, mails and
/// the avatar. Updates are limited to the columns a job writes: no worker can change whose
/// image it is or where its original lies, nor delete anything.
const WORKER_RIGHTS: &[(&str, &str)] = &[
    ("users", "SELECT, UPDATE (avatar_image_id, updated_at)"),
    (
        "images",
        "SELECT, UPDATE (thumbnails, moderation, moderation_reason, profile_job_claimed, published_at)",
    ),
    (
        "image_jobs",
        "SELECT, INSERT, UPDATE (state, attempt, error, updated_at)",
    ),
    (
        "sent_emails",
        "SELECT, INSERT, UPDATE (recipient, state, sent_at)",
    ),
    ("withdrawn_uploads", "SELECT"),
];

/// The photo domain's schema, for `db-setup` and for the apps' start-up check.
#[must_use]
pub fn schema() -> Schema {
    Schema {
        name: "photos",
        migrator: &MIGRATOR,
        producer: PRODUCER_RIGHTS,
        worker: WORKER_RIGHTS,
    }
}
