//! A job is acked only once its outcome is recorded: while the status write fails, the job
//! stays with its worker, which tries the write again, so the status is never silently wrong.

use photos::{ImageState, JobState};
use support::wait_until;

use super::fixtures::{jpeg, photo};
use crate::app::{Options, spawn_app};
use crate::helpers::PATIENCE;

/// Refuses to record `process_thumbnails` as done, as a database that is not available does,
/// counting each refusal in a sequence (which a failed statement does not roll back).
const REFUSE_THUMBNAILS_DONE: &str = "
    CREATE SEQUENCE refused_writes;
    -- As its owner: the worker's role has no right to the test's sequence.
    CREATE FUNCTION refuse_thumbnails_done() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER AS $$
    BEGIN
        IF NEW.kind = 'process_thumbnails' AND NEW.state = 'done' THEN
            PERFORM nextval('refused_writes');
            -- As a database that is starting up answers: a transient failure.
            RAISE EXCEPTION 'status writes refused by the test' USING ERRCODE = '57P03';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_thumbnails_done BEFORE INSERT OR UPDATE ON image_jobs
        FOR EACH ROW EXECUTE FUNCTION refuse_thumbnails_done();";

#[tokio::test]
async fn a_job_whose_outcome_cannot_be_recorded_is_not_acked_and_its_outcome_is_written_later() {
    let app = spawn_app("status-retried", Options::default()).await;
    let db = sqlx::PgPool::connect(&app.database.admin_url)
        .await
        .unwrap();
    sqlx::raw_sql(REFUSE_THUMBNAILS_DONE)
        .execute(&db)
        .await
        .unwrap();
    let image_id = app.accepted_upload("kim", jpeg(&photo(300, 300, 12))).await;
    let _worker = app.start_worker();

    // The thumbnails are made, and the worker tries to record that more than once.
    wait_until(
        PATIENCE,
        "the refused status write to be tried again",
        || async {
            let (refused, called): (i64, bool) =
                sqlx::query_as("SELECT last_value, is_called FROM refused_writes")
                    .fetch_one(&db)
                    .await
                    .unwrap();
            called && refused >= 2
        },
    )
    .await
    .unwrap();
    let thumbnails_state = || async { app.image(image_id).await.jobs["process_thumbnails"].state };
    assert_eq!(thumbnails_state().await, JobState::Running);

    // The database takes the write again: the outcome is recorded, and the upload completes.
    sqlx::raw_sql("DROP TRIGGER refuse_thumbnails_done ON image_jobs")
        .execute(&db)
        .await
        .unwrap();
    wait_until(
        PATIENCE,
        "the thumbnails' outcome to be recorded",
        || async { thumbnails_state().await == JobState::Done },
    )
    .await
    .unwrap();
    app.wait_for(image_id, ImageState::Ready).await;
}
