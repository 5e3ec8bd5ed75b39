//! Dead-letter tooling: failed jobs listed with their reasons, replayed to their work queue
//! with attempts reset (each copy confirmed before its dead letter goes), or purged.

use rabbitmq_jobs::{DeadLetters, Filter, Job, JobError, JobId, dead_letter_queue, work_queue};
use support::wait_until;

use crate::helpers::{Echo, PATIENCE, Recorder, TestApp, echo_registry, spawn_app};

/// Dead letters of these tests' `echo` kind.
fn dead_letters(app: &TestApp) -> DeadLetters {
    DeadLetters::new(&app.amqp, app.publisher.clone(), &[Echo::KIND.to_owned()])
}

/// Runs jobs `0..count` through a worker whose handler refuses odd numbers with "odd" and
/// even ones with "even", and waits until all are dead letters; returns their ids.
async fn dead_jobs(app: &TestApp, count: u64) -> Vec<JobId> {
    let recorder = Recorder::default();
    let worker = app.start_worker(echo_registry(&recorder, 0, |job, _| async move {
        let why = if job.n % 2 == 1 { "odd" } else { "even" };
        Err(JobError::permanent(format!("refused: {why}")))
    }));
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(app.publisher.publish(&Echo { n }).await.unwrap());
    }
    let (_connection, channel) = app.raw_channel().await;
    let dlq = dead_letter_queue(Echo::KIND);
    let expected = u32::try_from(count).unwrap();
    wait_until(PATIENCE, "every job dead-lettered", || async {
        app.ready(&channel, &dlq).await == expected
    })
    .await
    .unwrap();
    worker.stop().await.unwrap();
    ids
}

fn by_id(id: JobId) -> Filter {
    Filter {
        id: Some(id.to_string()),
        ..Filter::default()
    }
}

#[tokio::test]
async fn dead_letters_are_summarised_by_kind_and_shown_with_their_reason_and_headers() {
    let app = spawn_app("dlq-list").await;
    let ids = dead_jobs(&app, 3).await;
    let dead = dead_letters(&app);

    let summary = dead.summary(100).await.unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!((summary[0].kind.as_str(), summary[0].count), ("echo", 3));
    assert_eq!(
        summary[0].reasons,
        [
            ("refused: even".to_owned(), 2),
            ("refused: odd".to_owned(), 1)
        ]
    );
    assert!(summary[0].oldest.is_some());

    let letter = dead.show(&ids[1].to_string()).await.unwrap().unwrap();
    assert_eq!(letter.reason.as_deref(), Some("refused: odd"));
    assert_eq!((letter.kind.as_str(), letter.attempts), ("echo", Some(1)));
    assert_eq!(letter.body["payload"]["n"], 1);
    assert!(letter.headers.contains_key("x-job-failed-at"), "{letter:?}");
    // Reading takes nothing away.
    assert_eq!(dead.summary(100).await.unwrap()[0].count, 3);
    assert!(
        dead.show(&JobId::new().to_string())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_replayed_dead_letter_runs_again_as_a_fresh_job_and_leaves_its_queue() {
    let app = spawn_app("dlq-replay").await;
    let ids = dead_jobs(&app, 2).await;
    let dead = dead_letters(&app);

    let done = dead.replay(&by_id(ids[1])).await.unwrap();
    assert_eq!((done.replayed, done.skipped), (1, 1));

    let recorder = Recorder::default();
    let _worker = app.start_worker(echo_registry(&recorder, 0, crate::helpers::succeed));
    let calls = recorder.wait_for_calls(1).await;
    assert_eq!((calls[0].id, calls[0].attempt), (ids[1], 1));
    app.wait_until_settled(&work_queue(Echo::KIND)).await;
    let left = dead.list(&Filter::default(), 10).await.unwrap();
    let left: Vec<Option<String>> = left.into_iter().map(|letter| letter.id).collect();
    assert_eq!(left, [Some(ids[0].to_string())]);
    assert_eq!(recorder.calls().len(), 1);
}

#[tokio::test]
async fn replay_and_purge_take_only_the_dead_letters_their_filter_names() {
    let app = spawn_app("dlq-filter").await;
    dead_jobs(&app, 5).await;
    let dead = dead_letters(&app);
    let odd = Filter {
        reason: Some("odd".into()),
        ..Filter::default()
    };

    assert_eq!(dead.purge(&odd).await.unwrap(), 2);
    let left = dead.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(left.len(), 3);
    assert!(
        left.iter()
            .all(|letter| letter.reason.as_deref() == Some("refused: even"))
    );

    let one = Filter {
        body: Some(r#""n":4"#.into()),
        ..Filter::default()
    };
    assert_eq!(dead.replay(&one).await.unwrap().replayed, 1);
    let (_connection, channel) = app.raw_channel().await;
    assert_eq!(app.ready(&channel, &work_queue(Echo::KIND)).await, 1);

    let everything = Filter {
        kind: Some(Echo::KIND.into()),
        ..Filter::default()
    };
    assert_eq!(dead.purge(&everything).await.unwrap(), 2);
    assert_eq!(app.ready(&channel, &dead_letter_queue(Echo::KIND)).await, 0);
    let unknown = Filter {
        kind: Some("nope".into()),
        ..Filter::default()
    };
    assert!(dead.purge(&unknown).await.is_err());
}

#[tokio::test]
async fn a_replay_the_broker_does_not_take_leaves_the_dead_letter_in_place() {
    let app = spawn_app("dlq-unroutable").await;
    let ids = dead_jobs(&app, 2).await;
    let dead = dead_letters(&app);
    // The first replay opens the replaying publisher's lane (declaring the topology).
    assert_eq!(dead.replay(&by_id(ids[0])).await.unwrap().replayed, 1);
    // Then the work queue goes: the next copy is returned unroutable, never confirmed.
    let queue = work_queue(Echo::KIND);
    app.vhost
        .management
        .delete_queue(&app.vhost.name, &queue)
        .await
        .unwrap();

    let error = dead.replay(&by_id(ids[1])).await.unwrap_err();
    assert!(error.to_string().contains("no queue takes"), "{error}");
    let left = dead.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(
        left.len(),
        1,
        "the dead letter of an unconfirmed replay was removed"
    );
    assert_eq!(left[0].id, Some(ids[1].to_string()));
}
