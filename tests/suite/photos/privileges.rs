//! Least privilege in PostgreSQL: the producer and the workers log in as roles that can do
//! only what their statements do (every other photo test runs through those roles, so what
//! they need is granted), and neither app migrates: `db-setup` does, as the owner role.

use std::time::Duration;

use dbkit::set_up_database;
use photos::{ImageState, PhotoStore, StoreError};
use sqlx::PgPool;
use support::{Postgres, test_roles, unique_prefix};

use super::fixtures::{jpeg, photo};
use crate::app::{Options, spawn_app};

/// PostgreSQL's code for "permission denied" (and "must be owner").
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// Statements neither app ever runs: changing the schema, emptying a table, a temporary
/// table, and reading or writing the other app's tables.
const NOBODY_MAY: [&str; 6] = [
    "DROP TABLE images",
    "ALTER TABLE images ADD COLUMN stash text",
    "CREATE TABLE stash (x text)",
    "CREATE TEMP TABLE stash (x text)",
    "TRUNCATE image_jobs",
    "DELETE FROM _sqlx_migrations",
];

/// Runs each of `statements`, then each of [`NOBODY_MAY`], as `role`: each must be refused.
async fn assert_all_refused(pool: &PgPool, role: &str, statements: &[&str]) {
    for statement in statements.iter().chain(&NOBODY_MAY) {
        assert_refused(pool, role, statement).await;
    }
}

async fn assert_refused(pool: &PgPool, role: &str, statement: &str) {
    let error = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(pool)
        .await
        .expect_err(&format!("{role} may run `{statement}`"));
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|code| code.into_owned());
    assert_eq!(
        code.as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "`{statement}` as {role} failed otherwise: {error}"
    );
}

#[tokio::test]
async fn the_producers_role_cannot_approve_an_upload_forge_a_job_state_or_change_the_schema() {
    let app = spawn_app("privileges-producer", Options::default()).await;
    // Rows for each statement to touch if it were allowed.
    app.accepted_upload("mallory", jpeg(&photo(64, 64, 1)))
        .await;
    let producer = PgPool::connect(&app.database.producer_url).await.unwrap();

    let forbidden = [
        "UPDATE images SET moderation = 'approved'",
        "UPDATE images SET published_at = now()",
        "UPDATE image_jobs SET state = 'done'",
        "UPDATE users SET avatar_image_id = NULL",
        "DELETE FROM users",
        "DELETE FROM image_jobs",
        "SELECT * FROM sent_emails",
        "INSERT INTO sent_emails (image_id, recipient) SELECT id, 'x@y' FROM images",
        "SELECT * FROM withdrawn_uploads",
    ];
    assert_all_refused(&producer, "the producer", &forbidden).await;
}

#[tokio::test]
async fn a_workers_role_cannot_delete_an_image_reassign_it_or_point_it_at_another_file() {
    let app = spawn_app("privileges-worker", Options::default()).await;
    let image_id = app
        .accepted_upload("mallory", jpeg(&photo(64, 64, 2)))
        .await;
    let _worker = app.start_worker();
    // Every job ran through the worker's role: what it needs is granted.
    app.wait_for(image_id, ImageState::Ready).await;
    let worker = PgPool::connect(&app.database.worker_url).await.unwrap();

    let forbidden = [
        "DELETE FROM images",
        "UPDATE images SET user_id = 'mallory'",
        "UPDATE images SET original_key = '../../etc/passwd'",
        "UPDATE images SET public_original_key = 'public/elsewhere'",
        "INSERT INTO users (id) VALUES ('eve')",
        "UPDATE users SET id = 'eve'",
        "DELETE FROM sent_emails",
        "DELETE FROM image_jobs",
        "INSERT INTO withdrawn_uploads (image_id) VALUES (gen_random_uuid())",
    ];
    assert_all_refused(&worker, "a worker", &forbidden).await;
}

/// The tables of `public` that `owner` does not own.
async fn not_owned_by(db: &PgPool, owner: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tableowner <> $1",
    )
    .bind(owner)
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_app_on_a_database_nobody_set_up_migrates_nothing_and_db_setup_migrates_it_as_the_owner()
{
    support::logs::capture();
    // Even as the superuser, which could.
    let url = Postgres::shared().database("never-set-up").await.unwrap();

    let refused = PhotoStore::connect(&url, 1, Duration::from_secs(5)).await;

    let error = refused.expect_err("the store opened a database without a schema");
    assert!(
        matches!(&error, StoreError::SchemaBehind { missing, .. } if !missing.is_empty()),
        "{error}"
    );
    assert!(error.to_string().contains("db-setup"), "{error}");
    let db = PgPool::connect(&url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(tables, 0, "the app created tables");

    let roles = test_roles(&unique_prefix("n"));
    set_up_database(&url, &roles, &producer::schemas(), Duration::from_secs(60))
        .await
        .unwrap();
    let foreign = not_owned_by(&db, &roles.owner).await;
    assert!(
        foreign.is_empty(),
        "not owned by the owner role: {foreign:?}"
    );
    PhotoStore::connect(&url, 1, Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn setting_up_a_database_the_apps_migrated_hands_it_to_the_owner_and_takes_extra_rights_back()
{
    support::logs::capture();
    let url = Postgres::shared().database("set-up-again").await.unwrap();
    let db = PgPool::connect(&url).await.unwrap();
    // As earlier versions did: the app migrated at start, as the superuser.
    sqlx::migrate!("../shared/photos/migrations")
        .run(&db)
        .await
        .unwrap();
    let roles = test_roles(&unique_prefix("u"));

    set_up_database(&url, &roles, &producer::schemas(), Duration::from_secs(60))
        .await
        .unwrap();
    // A right granted by hand since (or by an older set-up) ...
    let grant = format!("GRANT DELETE ON users TO {}", roles.producer.role);
    sqlx::raw_sql(sqlx::AssertSqlSafe(grant))
        .execute(&db)
        .await
        .unwrap();
    // ... is gone after the next set-up, which is otherwise harmless.
    set_up_database(&url, &roles, &producer::schemas(), Duration::from_secs(60))
        .await
        .unwrap();

    let foreign = not_owned_by(&db, &roles.owner).await;
    assert!(
        foreign.is_empty(),
        "not owned by the owner role: {foreign:?}"
    );
    let producer_url = url.replacen(
        "postgres:postgres@",
        &format!("{}:{}@", roles.producer.role, roles.producer.password),
        1,
    );
    let producer = PgPool::connect(&producer_url).await.unwrap();
    assert_refused(&producer, "the producer", "DELETE FROM users").await;
    PhotoStore::connect(&producer_url, 1, Duration::from_secs(5))
        .await
        .unwrap();
}
