//! The worker runtime: consumes kinds with manual acks, runs their handlers, retries and
//! dead-letters, quarantines suspects, and heals its connection.
//!
//! A supervisor loop owns the connection (lapin does not reconnect by itself, and its
//! auto-recovery is not trusted after a broker restart): on loss it backs off, reconnects,
//! re-declares the topology and subscribes again. The old connection is closed first, so a
//! worker never holds two sets of consumers. Nothing the broker says makes it give up: a
//! refused declaration is logged and tried again, and the kinds that are fine are served.

mod delivery;
mod handler;
mod observer;
mod quarantine;
mod registry;
mod session;
mod settings;
mod settle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::delivery::Dispatcher;
pub use self::handler::{Handler, JobContext, JobError, JobResult, ResultExt};
pub use self::observer::{JobEvent, JobObserver, JobOutcome, ObserveError, Observed};
pub(crate) use self::registry::merge_kinds;
pub use self::registry::{DuplicateKind, Registry, UnknownKind};
use self::session::{BROKER_TIMEOUT, Context, OpenError, Session, SessionEnd, wait_for_jobs};
pub use self::settings::{Concurrency, HumanDuration, KindSetting, WorkerSettings};
use self::settle::OBSERVER_TIMEOUT;
use crate::backoff::Backoff;
use crate::connection::AmqpSettings;
use crate::instruments::{self, Role};
use crate::publisher::{PublishError, Publisher, PublisherSettings};
use crate::topology::TopologyError;

/// A worker that cannot start or must stop.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A setting names an unknown kind.
    #[error(transparent)]
    UnknownKind(#[from] UnknownKind),
    /// Settings that contradict each other.
    #[error("invalid worker settings: {0}")]
    Settings(String),
    /// A kind cannot name a queue.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The publisher for retries and dead letters could not be set up.
    #[error(transparent)]
    Publisher(#[from] PublishError),
}

/// Consumes the registered kinds until told to stop.
#[derive(Debug)]
pub struct Worker {
    amqp: AmqpSettings,
    settings: WorkerSettings,
    publishing: PublisherSettings,
    registry: Registry,
}

impl Worker {
    /// Applies the per-kind overrides in `settings` and checks them.
    pub fn new(
        amqp: AmqpSettings,
        settings: WorkerSettings,
        publishing: PublisherSettings,
        mut registry: Registry,
    ) -> Result<Self, WorkerError> {
        let kinds: Vec<&'static str> = registry.kinds().collect();
        for kind in kinds {
            registry.set_concurrency(kind, settings.concurrency)?;
        }
        for setting in &settings.job_concurrency {
            registry.set_concurrency(&setting.kind, setting.value.0)?;
        }
        for policy in &settings.retry_policies {
            registry.set_retry_policy(&policy.kind, policy.value)?;
        }
        for timeout in &settings.job_timeouts {
            registry.set_timeout(&timeout.kind, timeout.value.0)?;
        }
        if registry.kinds().next().is_none() {
            return Err(WorkerError::Settings("no job kinds to consume".into()));
        }
        check_hold_budget(&registry, &settings)?;
        Ok(Self {
            amqp,
            settings,
            publishing,
            registry,
        })
    }

    /// Runs until `shutdown` resolves, then drains: consumers are cancelled, running jobs get
    /// the shutdown deadline to finish and ack, and whatever is left is redelivered.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let topology = self.amqp.topology(self.registry.kinds())?;
        let publisher = Publisher::new(
            &self.amqp,
            self.publishing.clone(),
            topology.clone(),
            &self.settings.name,
        )?;
        let ctx = Arc::new(Context {
            amqp: self.amqp,
            topology,
            dispatcher: Dispatcher {
                registry: self.registry,
                publisher,
                max_crashes: self.settings.max_crashes,
                max_message_size: self.publishing.max_message_size,
                hold_limit: self.settings.hold_limit(),
            },
            settings: self.settings,
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
        });
        let supervisor = supervise(Arc::clone(&ctx));
        tokio::pin!(supervisor, shutdown);
        let result = tokio::select! {
            result = &mut supervisor => result,
            () = &mut shutdown => {
                tracing::info!("shutdown requested; draining");
                ctx.stop.cancel();
                supervisor.await
            }
        };
        ctx.dispatcher.publisher.close().await;
        result
    }
}

/// The least time left to park a copy after a handler's timeout and the observer's two
/// events. Beyond the hold limit, the broker would close the channel of a delivery still held.
const MIN_SETTLE: Duration = Duration::from_secs(5);

/// Refuses a kind whose timeout leaves no room to settle its deliveries before the broker's
/// `consumer_timeout`: a worker must never hold a delivery that long.
fn check_hold_budget(registry: &Registry, settings: &WorkerSettings) -> Result<(), WorkerError> {
    let hold = settings.hold_limit();
    let overhead = OBSERVER_TIMEOUT * 2 + MIN_SETTLE;
    match registry
        .entries()
        .find(|(_, entry)| entry.timeout + overhead > hold)
    {
        None => Ok(()),
        Some((kind, entry)) => Err(WorkerError::Settings(format!(
            "the timeout of `{kind}` ({:?}) plus {overhead:?} to settle it must stay within \
             {hold:?}, just below BROKER_CONSUMER_TIMEOUT ({:?}), or the broker closes the \
             channel of a job still running",
            entry.timeout, settings.consumer_timeout
        ))),
    }
}

/// How long a session must last before reconnect delays start again from the floor.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// Keeps a session open, reconnecting with backoff, until stopped.
async fn supervise(ctx: Arc<Context>) -> Result<(), WorkerError> {
    let mut backoff = Backoff::default();
    let mut connected_before = false;
    while !ctx.stop.is_cancelled() {
        let opened = tokio::time::timeout(BROKER_TIMEOUT, Session::open(&ctx)).await;
        match opened.unwrap_or(Err(OpenError::TimedOut(BROKER_TIMEOUT))) {
            Ok(session) => {
                if connected_before {
                    instruments::reconnected(Role::Worker);
                }
                connected_before = true;
                let started = tokio::time::Instant::now();
                match session.run(&ctx).await {
                    SessionEnd::Stopped => return Ok(()),
                    SessionEnd::Lost(reason) => tracing::warn!(%reason, "connection lost"),
                }
                // A session that held for a while earns a fresh start; one lost at once (a
                // broker that takes the connection and then drops it) keeps backing off.
                if started.elapsed() >= STABLE_SESSION {
                    backoff.reset();
                }
            }
            Err(OpenError::Topology(error)) if error.is_refused() => {
                tracing::error!(%error, "the broker refused the shared topology; trying again");
            }
            Err(error) => tracing::warn!(%error, "cannot consume"),
        }
        let delay = backoff.next_delay();
        tracing::info!(?delay, "reconnecting");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.stop.cancelled() => {}
        }
    }
    // Stopped while disconnected: jobs still running cannot ack, but let them finish.
    wait_for_jobs(&ctx).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::job::Job;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Slow;

    impl Job for Slow {
        const KIND: &'static str = "slow";
        const VERSION: u32 = 1;
        const TIMEOUT: Duration = Duration::from_secs(3600);
    }

    fn registry() -> Registry {
        Registry::new().register(|_: Slow, _: JobContext| async { Ok(()) })
    }

    fn amqp() -> AmqpSettings {
        AmqpSettings::from_url("amqp://localhost").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_job_timeout_beyond_the_brokers_consumer_timeout_is_refused_at_start() {
        let settings = WorkerSettings::default();
        let error = Worker::new(amqp(), settings, PublisherSettings::default(), registry());
        assert!(
            matches!(&error, Err(WorkerError::Settings(m)) if m.contains("BROKER_CONSUMER_TIMEOUT")),
            "{error:?}"
        );
        // A timeout that leaves too little room to settle is refused as well.
        let tight = WorkerSettings {
            consumer_timeout: Duration::from_secs(3600 + 30),
            ..WorkerSettings::default()
        };
        let error = Worker::new(amqp(), tight, PublisherSettings::default(), registry());
        assert!(matches!(&error, Err(WorkerError::Settings(_))), "{error:?}");
    }

    #[test]
    fn the_run_future_can_be_spawned_on_a_multi_threaded_runtime() {
        fn assert_send<T: Send>(_: &T) {}
        let worker = Worker::new(
            amqp(),
            WorkerSettings {
                consumer_timeout: Duration::from_secs(7200),
                ..WorkerSettings::default()
            },
            PublisherSettings::default(),
            registry(),
        );
        let worker = worker.unwrap_or_else(|e| panic!("{e}"));
        assert_send(&worker.run(async {}));
    }

    #[test]
    fn an_override_for_an_unknown_kind_is_refused_at_start() {
        let settings = WorkerSettings {
            job_timeouts: vec!["nope=1s".parse().unwrap_or_else(|e| panic!("{e}"))],
            ..WorkerSettings::default()
        };
        let error = Worker::new(amqp(), settings, PublisherSettings::default(), registry());
        assert!(
            matches!(error, Err(WorkerError::UnknownKind(_))),
            "{error:?}"
        );
    }
}
