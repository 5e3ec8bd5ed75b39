//! Least privilege: the users of `producer broker-definitions` can do their job and no more.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use rabbitmq_jobs::{
    AmqpSettings, BrokerUser, Job, JobError, Publisher, Role, Topology, TopologyMode,
    broker_definitions, work_queue,
};

use crate::helpers::{Echo, Recorder, TestApp, echo_registry, fast_publishing};

struct Users {
    producer: AmqpSettings,
    worker: AmqpSettings,
}

/// A vhost set up from the definitions document, with fresh users for its two roles.
async fn least_privilege_vhost(app: &TestApp) -> Users {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let user = |role: &str, kind| BrokerUser {
        name: format!("{role}-{suffix}"),
        password: format!("{role}-password"),
        role: kind,
    };
    let (producer, worker) = (
        user("producer", Role::Publisher),
        user("worker", Role::Consumer),
    );
    let topology = Topology::new([Echo::KIND]).unwrap();
    let definitions = broker_definitions(
        &topology,
        &app.vhost.name,
        &[producer.clone(), worker.clone()],
    );
    app.vhost
        .management
        .import_definitions(&definitions)
        .await
        .unwrap();
    let settings = |user: &BrokerUser| {
        let url = app.vhost.amqp_url.replacen(
            "guest:guest",
            &format!("{}:{}", user.name, user.password),
            1,
        );
        let mut settings = AmqpSettings::from_url(&url).unwrap();
        settings.topology = TopologyMode::Verify;
        settings
    };
    Users {
        producer: settings(&producer),
        worker: settings(&worker),
    }
}

#[tokio::test]
async fn least_privilege_users_can_do_their_job_and_nothing_else() {
    let app = crate::helpers::spawn_app("least-privilege").await;
    let users = least_privilege_vhost(&app).await;

    // The producer verifies the topology and publishes...
    let topology = users.producer.topology([Echo::KIND]).unwrap();
    let publisher = Publisher::connect(&users.producer, fast_publishing(), topology, "producer")
        .await
        .unwrap();
    publisher.publish(&Echo { n: 0 }).await.unwrap();
    publisher.publish(&Echo { n: 1 }).await.unwrap();
    // ...but may not declare anything, nor consume.
    let declaring = Topology::new([Echo::KIND]).unwrap();
    let refused =
        Publisher::connect(&users.producer, fast_publishing(), declaring, "declaring").await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("ACCESS_REFUSED"));
    let connection = users.producer.connect("raw producer").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let consumed = channel
        .basic_consume(
            work_queue(Echo::KIND).into(),
            "sneaky".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(format!("{:?}", consumed.unwrap_err()).contains("ACCESS_REFUSED"));

    // The worker consumes, retries (through a wait queue) and dead-letters.
    let recorder = Recorder::default();
    let registry = echo_registry(&recorder, 0, |job, ctx| async move {
        match (job.n, ctx.attempt) {
            (0, 1) => Err(JobError::retry("once more")),
            (1, _) => Err(JobError::permanent("never")),
            _ => Ok(()),
        }
    });
    let mut settings = app.worker_settings("least-privilege");
    settings.retry_policies = vec![rabbitmq_jobs::KindSetting {
        kind: Echo::KIND.into(),
        value: rabbitmq_jobs::RetryPolicy::new(
            3,
            Duration::from_millis(100),
            Duration::from_secs(1),
        ),
    }];
    let worker =
        rabbitmq_jobs::Worker::new(users.worker.clone(), settings, fast_publishing(), registry)
            .unwrap();
    let _worker = crate::helpers::RunningWorker::spawn(move || async move { worker });
    let calls = recorder.wait_for_calls(3).await;
    let mut seen: Vec<(u64, u32)> = calls.iter().map(|c| (c.n, c.attempt)).collect();
    seen.sort();
    assert_eq!(seen, [(0, 1), (0, 2), (1, 1)]);
    assert_eq!(app.dead_letters(Echo::KIND, 1).await[0].error(), "never");

    // The worker may publish only where retries, dead letters and follow-up jobs go.
    let connection = users.worker.connect("raw worker").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let stray = channel
        .basic_publish(
            "amq.topic".into(),
            "x".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await;
    assert!(format!("{stray:?}").contains("ACCESS_REFUSED"), "{stray:?}");
}
