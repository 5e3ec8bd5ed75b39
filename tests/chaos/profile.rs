//! How big a chaos run is: the full profile meets the figures, `--quick` injects every
//! fault at least once with less load, for a short check.

use std::time::Duration;

/// The figures of one profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `full` or `quick`.
    pub name: &'static str,
    /// Worker processes.
    pub workers: usize,
    /// Uploads through the HTTP API (each fans out to four jobs).
    pub uploads: u32,
    /// `chaos_effect` jobs published at a steady pace over the load phase.
    pub steady_effects: u32,
    /// `chaos_effect` jobs published at once before a SIGKILL or SIGSTOP, so that the victim
    /// holds a full prefetch of jobs.
    pub burst: u32,
    /// Broker restarts.
    pub restarts: usize,
    /// Times the broker is stopped for 30 s while uploads go on.
    pub outages: usize,
    /// `rabbitmqctl close_all_connections`.
    pub closes: usize,
    /// Worker SIGKILLs.
    pub kills: usize,
    /// Worker SIGSTOP / SIGCONT.
    pub freezes: usize,
    /// Load only, before the first fault.
    pub warm_up: Duration,
    /// Longest wait for everything accepted to be handled once the load stops.
    pub drain_deadline: Duration,
    /// Jobs that must be accepted at least, all sources together.
    pub min_jobs: usize,
    /// A three-node cluster instead of one broker.
    pub cluster: bool,
    /// Nodes killed and started again (cluster only): the producer's node, then the
    /// leaders' node, in turn.
    pub node_kills: usize,
    /// Times the leaders' node is cut off the network and put back (cluster only).
    pub node_cuts: usize,
    /// The single broker's resource alarms and the planted poison.
    pub alarms_and_poison: bool,
}

impl Profile {
    /// The figures: 1,000 uploads (4,000 jobs) and at least 6,000 effect jobs, 3
    /// restarts, a 30 s outage, 10 forced closes, 6 kills, a freeze, both alarms and every poison.
    pub fn full() -> Self {
        Self {
            name: "full",
            workers: 3,
            uploads: 1_000,
            steady_effects: 3_000,
            burst: 1_000,
            restarts: 3,
            outages: 1,
            closes: 10,
            kills: 6,
            freezes: 1,
            warm_up: Duration::from_secs(10),
            drain_deadline: Duration::from_secs(600),
            min_jobs: 10_000,
            cluster: false,
            node_kills: 0,
            node_cuts: 0,
            alarms_and_poison: true,
        }
    }

    /// Every fault at least once, with a fifth of the load.
    pub fn quick() -> Self {
        Self {
            name: "quick",
            workers: 3,
            uploads: 200,
            steady_effects: 800,
            burst: 600,
            restarts: 1,
            outages: 1,
            closes: 2,
            kills: 2,
            freezes: 1,
            warm_up: Duration::from_secs(8),
            drain_deadline: Duration::from_secs(300),
            min_jobs: 2_000,
            cluster: false,
            node_kills: 0,
            node_cuts: 0,
            alarms_and_poison: true,
        }
    }

    /// The cluster's faults (`--cluster`): the load of the quick profile while nodes are
    /// killed and started again (the producer's, then the leaders') and one is cut off the
    /// network; worker faults beside them.
    pub fn cluster() -> Self {
        Self {
            name: "cluster",
            restarts: 0,
            outages: 0,
            closes: 1,
            kills: 1,
            freezes: 0,
            cluster: true,
            node_kills: 2,
            node_cuts: 1,
            alarms_and_poison: false,
            ..Self::quick()
        }
    }

    /// The names the harness gives its workers: `chaos-w1`, `chaos-w2`, …
    pub fn worker_names(&self) -> Vec<String> {
        (1..=self.workers).map(|n| format!("chaos-w{n}")).collect()
    }
}
