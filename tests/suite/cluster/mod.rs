//! A three-node cluster losing a node while jobs flow: clients move to the nodes left, and
//! every confirmed job is handled. One cluster at a time: three nodes each is as much as a
//! two-core machine runs beside the rest of the suite.

mod failover;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rabbitmq_jobs::{AmqpSettings, Job, Publisher, Topology, WorkerSettings};
use support::Cluster;
use tokio::time::Instant;

use crate::helpers::{Echo, Recorder, RunningWorker, echo_registry, fast_publishing, succeed};

/// At least this many jobs flow through each fault.
const JOBS: u64 = 5_000;
/// Jobs published per second: slow enough that the flow spans the fault.
const RATE: u64 = 250;
/// Publishes in flight at once.
const CONCURRENCY: usize = 16;
/// Longest a test waits for its jobs once publishing ended.
const DRAIN: Duration = Duration::from_secs(180);

static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A cluster with a publisher and a worker given every node's URL.
pub struct ClusterApp {
    pub cluster: Cluster,
    pub publisher: Publisher,
    /// The publisher's connection name prefix, to find its node.
    pub publisher_name: String,
    pub recorder: Recorder,
    /// When this test had the cluster slot, and how long its cluster took to start: the
    /// cluster tests run one at a time, so their times add up in CI's.
    started: Instant,
    startup: Duration,
    _worker: RunningWorker,
    _slot: tokio::sync::MutexGuard<'static, ()>,
}

impl ClusterApp {
    pub async fn start(label: &str) -> ClusterApp {
        support::logs::capture();
        let slot = ONE_CLUSTER.lock().await;
        let started = Instant::now();
        let cluster = Cluster::start(label).await.expect("starting the cluster");
        let startup = started.elapsed();
        let amqp = AmqpSettings::from_url(&cluster.amqp_urls("/")).unwrap();
        let publisher_name = format!("{label}-app");
        let topology = Topology::new([Echo::KIND]).unwrap();
        let publisher = Publisher::connect(&amqp, fast_publishing(), topology, &publisher_name)
            .await
            .expect("connecting to the cluster");
        // RabbitMQ 3.10 may name a queue's leader differently on each node for a while after
        // declaring it; a fault aimed at "the leader" waits until all three agree.
        let queue = rabbitmq_jobs::work_queue(Echo::KIND);
        support::wait_until(DRAIN, "every node naming one leader", || async {
            let mut leaders = Vec::new();
            for asked in 0..support::cluster::NODES {
                leaders.push(cluster.leader_of(&queue, asked).await);
            }
            leaders
                .iter()
                .all(|leader| leader.is_ok() && *leader == leaders[0])
        })
        .await
        .unwrap();
        let recorder = Recorder::default();
        let settings = WorkerSettings {
            name: format!("{label}-worker"),
            ..WorkerSettings::default()
        };
        let registry = echo_registry(&recorder, 0, succeed);
        let worker = rabbitmq_jobs::Worker::new(amqp, settings, fast_publishing(), registry)
            .expect("valid worker settings");
        ClusterApp {
            cluster,
            publisher,
            publisher_name,
            recorder,
            started,
            startup,
            _worker: RunningWorker::start(worker),
            _slot: slot,
        }
    }

    /// Publishes at least [`JOBS`] jobs at [`RATE`] while `fault` runs (and on, at a tenth
    /// of the rate, until it has ended), each published again until confirmed; then waits until every confirmed job was
    /// handled, and returns what the fault cost.
    pub async fn flow_through<F>(&self, name: &str, fault: F) -> FaultReport
    where
        F: Future<Output = ()>,
    {
        let flow = Flow::default();
        let fault_done = Arc::new(tokio::sync::Notify::new());
        let publishing = flow.publish(self.publisher.clone(), Arc::clone(&fault_done));
        let faulting = async {
            flow.wait_for_confirms(JOBS / 5).await;
            fault.await;
            fault_done.notify_one();
        };
        tokio::join!(publishing, faulting);
        let confirmed = flow.confirmed_jobs();
        support::wait_until(DRAIN, "every confirmed job handled", || async {
            self.handled().is_superset(&confirmed)
        })
        .await
        .unwrap_or_else(|e| {
            let missing = confirmed.difference(&self.handled()).count();
            panic!(
                "{e}: {missing} of {} confirmed jobs never handled",
                confirmed.len()
            )
        });
        let report = FaultReport {
            fault: name.to_owned(),
            jobs: confirmed.len(),
            handled_twice: self.recorder.calls().len().saturating_sub(confirmed.len()),
            longest_pause: flow.longest_pause(),
            took: self.started.elapsed(),
            startup: self.startup,
        };
        report.record();
        report
    }

    fn handled(&self) -> BTreeSet<u64> {
        self.recorder.calls().iter().map(|call| call.n).collect()
    }

    /// The index of the node the publisher's connections are on (the first, if several).
    pub async fn publisher_node(&self) -> usize {
        self.cluster
            .node_of_client(&self.publisher_name)
            .await
            .unwrap()
    }

    /// The index of the node holding the work queue's leader, as node `asked` sees it.
    pub async fn leader_node(&self, asked: usize) -> Result<usize, String> {
        let queue = rabbitmq_jobs::work_queue(Echo::KIND);
        self.cluster.leader_of(&queue, asked).await
    }
}

/// What one fault cost.
#[derive(Debug)]
pub struct FaultReport {
    pub fault: String,
    pub jobs: usize,
    pub handled_twice: usize,
    pub longest_pause: Duration,
    /// The test's time with the cluster, and the part of it the cluster took to start.
    pub took: Duration,
    pub startup: Duration,
}

impl FaultReport {
    /// Appends the figures to `cluster-failover.txt` in Cargo's test directory, which CI
    /// prints (a passing test's output is not shown).
    fn record(&self) {
        let line = format!(
            "{image}: {fault}: {jobs} jobs confirmed and handled, none lost; publishing paused \
             {pause:.1} s at most; {twice} handled twice (test {took:.0} s, of which cluster \
             start {startup:.0} s)\n",
            image = std::env::var("RABBITMQ_IMAGE").unwrap_or_default(),
            fault = self.fault,
            jobs = self.jobs,
            pause = self.longest_pause.as_secs_f64(),
            twice = self.handled_twice,
            took = self.took.as_secs_f64(),
            startup = self.startup.as_secs_f64(),
        );
        eprint!("{line}");
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-failover.txt");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
        if let Err(error) = appended {
            eprintln!("cannot record the figures: {error}");
        }
    }
}

/// Jobs published and the times their confirms came.
#[derive(Default, Clone)]
struct Flow {
    confirms: Arc<Mutex<Vec<(u64, Instant)>>>,
}

impl Flow {
    async fn publish(&self, publisher: Publisher, fault_done: Arc<tokio::sync::Notify>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
        let mut tasks = tokio::task::JoinSet::new();
        let done = fault_done.notified();
        tokio::pin!(done);
        let mut fault_over = false;
        let mut n = 0;
        while n < JOBS || !fault_over {
            if n == JOBS {
                // Past the count, a tenth of the pace still times the pause (to 40 ms)
                // without piling up jobs while a slow fault (3.10's autoheal) lasts.
                ticks = tokio::time::interval(Duration::from_micros(10_000_000 / RATE));
            }
            tokio::select! {
                () = &mut done, if !fault_over => { fault_over = true; continue; }
                _ = ticks.tick() => {}
            }
            let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
            let (publisher, flow) = (publisher.clone(), self.clone());
            tasks.spawn(async move {
                flow.publish_until_confirmed(&publisher, n).await;
                drop(slot);
            });
            n += 1;
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }

    /// What a caller of `publish` owes its jobs: an error means "not known to be stored",
    /// so the job is published again (the outbox's relay does the same).
    async fn publish_until_confirmed(&self, publisher: &Publisher, n: u64) {
        let deadline = Instant::now() + DRAIN;
        let mut delay = Duration::from_millis(50);
        loop {
            match publisher.publish(&Echo { n }).await {
                Ok(_) => break,
                Err(error) if Instant::now() < deadline => {
                    tracing::info!(n, %error, "not confirmed; publishing again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(error) => panic!("job {n} not confirmed within {DRAIN:?}: {error}"),
            }
        }
        self.confirms.lock().unwrap().push((n, Instant::now()));
    }

    async fn wait_for_confirms(&self, count: u64) {
        let what = format!("{count} confirmed jobs");
        support::wait_until(DRAIN, &what, || async {
            self.confirms.lock().unwrap().len() as u64 >= count
        })
        .await
        .unwrap();
    }

    fn confirmed_jobs(&self) -> BTreeSet<u64> {
        self.confirms
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| *n)
            .collect()
    }

    /// The longest time without a single confirm.
    fn longest_pause(&self) -> Duration {
        let mut times: Vec<Instant> = self.confirms.lock().unwrap().iter().map(|c| c.1).collect();
        times.sort();
        times
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap_or_default()
    }
}
