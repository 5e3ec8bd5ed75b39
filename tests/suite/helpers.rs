//! What every test needs: a vhost of its own, a publisher, workers that can be stopped or
//! killed, a recorder of handler calls, and a look into queues and dead letters.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use rabbitmq_jobs::{
    AmqpSettings, Job, JobContext, JobId, Publisher, PublisherSettings, Registry, RetryPolicy,
    Topology, TraceContext, Worker, WorkerSettings,
};
use serde::{Deserialize, Serialize};
use support::logs::Logs;
use support::{Broker, QueueStats, Vhost, wait_until};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Generous: CI machines are slow and shared; a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The test job: a number to recognise it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    pub n: u64,
}

impl Job for Echo {
    const KIND: &'static str = "echo";
    const VERSION: u32 = 1;
    const RETRY: RetryPolicy =
        RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(1));
}

/// One handler call.
#[derive(Debug, Clone)]
pub struct Call {
    pub n: u64,
    pub id: JobId,
    pub attempt: u32,
    pub at: Instant,
    pub worker: usize,
    pub redelivered: bool,
    pub trace: TraceContext,
}

/// Handler calls, shared between the test and its workers.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recorder {
    pub fn record(&self, worker: usize, job: &Echo, ctx: &JobContext) {
        let call = Call {
            n: job.n,
            id: ctx.id,
            attempt: ctx.attempt,
            at: Instant::now(),
            worker,
            redelivered: ctx.redelivered,
            trace: ctx.trace,
        };
        self.calls.lock().unwrap().push(call);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until at least `count` calls happened.
    pub async fn wait_for_calls(&self, count: usize) -> Vec<Call> {
        wait_until(PATIENCE, &format!("{count} handler calls"), || async {
            self.calls.lock().unwrap().len() >= count
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; got {}", self.calls().len()));
        self.calls()
    }

    /// Waits until `count` distinct jobs were handled.
    pub async fn wait_for_distinct(&self, count: usize) -> Vec<Call> {
        wait_until(
            PATIENCE,
            &format!("{count} distinct jobs handled"),
            || async { self.distinct() >= count },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; got {}", self.distinct()));
        self.calls()
    }

    pub fn distinct(&self) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .map(|c| c.id)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }
}

/// A dead-lettered message.
#[derive(Debug)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

impl DeadLetter {
    pub fn error(&self) -> String {
        rabbitmq_jobs::header_str(self.properties.headers().as_ref(), rabbitmq_jobs::JOB_ERROR)
            .unwrap_or_default()
    }

    pub fn attempts(&self) -> Option<u32> {
        rabbitmq_jobs::header_u32(
            self.properties.headers().as_ref(),
            rabbitmq_jobs::JOB_ATTEMPTS,
        )
    }
}

/// One test's world: a fresh vhost and a publisher into it.
pub struct TestApp {
    pub vhost: Vhost,
    pub amqp: AmqpSettings,
    pub publisher: Publisher,
}

/// A test app on the shared broker.
pub async fn spawn_app(label: &str) -> TestApp {
    spawn_app_on(Broker::shared(), label).await
}

/// A test app on `broker`, publishing the `echo` kind.
pub async fn spawn_app_on(broker: &Broker, label: &str) -> TestApp {
    support::logs::capture();
    let vhost = broker.vhost(label).await.expect("creating the test vhost");
    let amqp = AmqpSettings::from_url(&vhost.amqp_url).expect("test AMQP URL");
    let topology = Topology::new([Echo::KIND]).unwrap();
    let publisher = Publisher::connect(&amqp, fast_publishing(), topology, label)
        .await
        .expect("connecting the test publisher");
    TestApp {
        vhost,
        amqp,
        publisher,
    }
}

/// Publisher settings that give up quickly when a test expects an error.
pub fn fast_publishing() -> PublisherSettings {
    PublisherSettings {
        publish_timeout: Duration::from_secs(60),
        ..PublisherSettings::default()
    }
}

impl TestApp {
    /// Settings for a worker of this test.
    pub fn worker_settings(&self, name: &str) -> WorkerSettings {
        WorkerSettings {
            name: format!("{}-{name}", self.vhost.name),
            shutdown_timeout: Duration::from_secs(20),
            ..WorkerSettings::default()
        }
    }

    /// Starts a worker with default test settings.
    pub fn start_worker(&self, registry: Registry) -> RunningWorker {
        self.start_worker_with(registry, self.worker_settings("worker"))
    }

    /// Starts a worker, in a runtime of its own as if it were another process.
    pub fn start_worker_with(&self, registry: Registry, settings: WorkerSettings) -> RunningWorker {
        let worker = Worker::new(self.amqp.clone(), settings, fast_publishing(), registry)
            .expect("valid worker settings");
        RunningWorker::start(worker)
    }

    pub async fn queue(&self, queue: &str) -> QueueStats {
        self.vhost
            .management
            .queue(&self.vhost.name, queue)
            .await
            .expect("reading queue stats")
    }

    /// Waits until `queue` has nothing ready and nothing unacked.
    pub async fn wait_until_settled(&self, queue: &str) {
        wait_until(
            PATIENCE,
            &format!("{queue} to be empty and fully acked"),
            || async {
                let stats = self.queue(queue).await;
                stats.messages_ready == 0 && stats.messages_unacknowledged == 0
            },
        )
        .await
        .unwrap();
    }

    /// A plain lapin connection and confirm channel into the test's vhost.
    pub async fn raw_channel(&self) -> (Connection, Channel) {
        open_channel(&self.vhost.amqp_url).await
    }

    /// Publishes `body` to `jobs` with `routing_key` as a foreign producer would, and checks
    /// the broker confirmed and routed it.
    pub async fn publish_raw(&self, channel: &Channel, routing_key: &str, body: &[u8]) {
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(uuid::Uuid::new_v4().to_string().into())
            .with_type(routing_key.into());
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish(
                rabbitmq_jobs::EXCHANGE.into(),
                routing_key.into(),
                options,
                body,
                properties,
            )
            .await
            .expect("raw publish")
            .await
            .expect("raw confirm");
        assert!(confirm.is_ack(), "the broker nacked a raw publish");
        assert!(
            confirm.take_message().is_none(),
            "a raw publish was unroutable"
        );
    }

    /// Messages ready in `queue`, straight from the broker (no statistics delay).
    pub async fn ready(&self, channel: &Channel, queue: &str) -> u32 {
        messages_ready(channel, queue).await
    }

    /// Waits for `count` dead letters of `kind` and takes them off the DLQ.
    pub async fn dead_letters(&self, kind: &str, count: u32) -> Vec<DeadLetter> {
        let (_connection, channel) = self.raw_channel().await;
        let dlq = rabbitmq_jobs::dead_letter_queue(kind);
        wait_until(
            PATIENCE,
            &format!("{count} dead letters in {dlq}"),
            || async { self.ready(&channel, &dlq).await >= count },
        )
        .await
        .unwrap();
        let mut letters = Vec::new();
        while let Some(message) = channel
            .basic_get(dlq.as_str().into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
        {
            message
                .delivery
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            letters.push(DeadLetter {
                body: message.delivery.data.clone(),
                properties: message.delivery.properties.clone(),
            });
        }
        letters
    }
}

/// A worker running in a thread and runtime of its own, as if it were another process.
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    kill: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<Option<Result<(), String>>>>,
}

impl RunningWorker {
    pub fn start(worker: Worker) -> Self {
        Self::spawn(move || async move { worker })
    }

    /// Builds the worker with `make` inside the worker's own runtime (so its database and
    /// broker connections belong to it) and runs it.
    pub fn spawn<F, Fut>(make: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Worker>,
    {
        Self::spawn_logged(make, None)
    }

    /// As [`RunningWorker::spawn`]; with `logs`, on one thread whose log lines go there.
    pub fn spawn_logged<F, Fut>(make: F, logs: Option<Logs>) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Worker>,
    {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::spawn(move || {
            // A thread's own subscriber sees only that thread: a logged worker runs on one.
            let _capturing = logs.as_ref().map(Logs::capture);
            let runtime = match logs {
                Some(_) => tokio::runtime::Builder::new_current_thread(),
                None => {
                    let mut builder = tokio::runtime::Builder::new_multi_thread();
                    builder.worker_threads(2);
                    builder
                }
            }
            .enable_all()
            .build()
            .expect("worker runtime");
            let result = runtime.block_on(async move {
                let worker = make().await;
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                tokio::select! {
                    result = worker.run(shutdown) => Some(result.map_err(|e| e.to_string())),
                    _ = kill_rx => None,
                }
            });
            // Killing drops every task of the worker, its sockets included, like a crash.
            runtime.shutdown_background();
            let _ = done_tx.send(result);
        });
        Self {
            stop: Some(stop_tx),
            kill: Some(kill_tx),
            done: Some(done_rx),
        }
    }

    /// Graceful stop (as on SIGTERM); returns what `Worker::run` returned.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await.unwrap_or(Ok(()))
    }

    /// Abrupt end: no drain, no acks, connections dropped.
    pub async fn kill(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        let _ = self.wait().await;
    }

    async fn wait(&mut self) -> Option<Result<(), String>> {
        let done = self.done.take()?;
        tokio::time::timeout(PATIENCE, done)
            .await
            .expect("the worker thread did not end")
            .ok()
            .flatten()
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// A registry with one `echo` handler that records its calls and then runs `outcome`.
pub fn echo_registry<F, Fut>(recorder: &Recorder, worker: usize, outcome: F) -> Registry
where
    F: Fn(Echo, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = rabbitmq_jobs::JobResult> + Send,
{
    let recorder = recorder.clone();
    Registry::new().register(move |job: Echo, ctx: JobContext| {
        recorder.record(worker, &job, &ctx);
        outcome(job, ctx)
    })
}

/// The handler outcome "success".
pub async fn succeed(_: Echo, _: JobContext) -> rabbitmq_jobs::JobResult {
    Ok(())
}

/// Publishes `count` echo jobs, numbered from 0, with pipelined confirms.
pub async fn publish_echoes(publisher: &Publisher, count: u64) -> Vec<JobId> {
    let jobs: Vec<Echo> = (0..count).map(|n| Echo { n }).collect();
    publisher
        .publish_batch(&jobs)
        .await
        .expect("publishing echoes")
}

/// A plain lapin connection and confirm channel to `amqp_url`.
pub async fn open_channel(amqp_url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("raw connection");
    let channel = connection.create_channel().await.expect("raw channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    (connection, channel)
}

/// Messages ready in `queue`, or `None` while it does not exist (a passive declare for
/// that closes its channel, so each call opens a connection of its own).
pub async fn messages_ready_if_declared(amqp_url: &str, queue: &str) -> Option<u32> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .ok()?;
    let channel = connection.create_channel().await.ok()?;
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await;
    let _ = connection.close(0, "done".into()).await;
    declared.ok().map(|queue| queue.message_count())
}

/// Messages ready in `queue`, straight from the broker (a passive declare: no statistics
/// delay).
pub async fn messages_ready(channel: &Channel, queue: &str) -> u32 {
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("passive declare")
        .message_count()
}
