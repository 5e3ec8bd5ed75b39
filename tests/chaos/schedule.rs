//! The fault schedule, computed before the run starts and printed: which fault, and when it
//! is planned (an offset from the start of the load). Each kind of fault is spread evenly
//! over the run; a fault never starts before the previous one recovered.

use std::fmt;
use std::time::Duration;

use crate::plants::Plant;
use crate::profile::Profile;

/// One fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `docker restart` of the broker's container.
    RestartBroker,
    /// The broker stopped for 30 s while uploads go on (`docker stop`, `docker start`).
    BrokerDown,
    /// `rabbitmqctl close_all_connections`.
    CloseConnections,
    /// SIGKILL of worker `n` (from 0) while it holds unacked jobs.
    KillWorker(usize),
    /// SIGSTOP of worker `n` past the heartbeat timeout, then SIGCONT.
    FreezeWorker(usize),
    /// The memory alarm raised, uploads probed, the alarm lifted.
    MemoryAlarm,
    /// The disk alarm raised, uploads probed, the alarm lifted.
    DiskAlarm,
    /// A poisonous job or message.
    Plant(Plant),
    /// A cluster node killed (`docker kill`), then started again once the others noticed.
    KillNode(NodeTarget),
    /// The node holding the queues' leaders cut off the network until new leaders are
    /// elected, then put back.
    CutNode,
}

/// Which node a node fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTarget {
    /// The node the producer's publisher is connected to.
    Producers,
    /// The node holding the leader of the first chaos kind's queue.
    Leaders,
}

impl Fault {
    /// The time planned for the fault and its recovery.
    fn slot(self) -> Duration {
        Duration::from_secs(match self {
            Self::RestartBroker => 35,
            Self::BrokerDown => 55,
            Self::CloseConnections => 8,
            Self::KillWorker(_) => 10,
            Self::FreezeWorker(_) => 20,
            Self::MemoryAlarm | Self::DiskAlarm => 25,
            Self::Plant(Plant::Abort) => 25,
            Self::Plant(_) => 6,
            Self::KillNode(_) => 60,
            Self::CutNode => 90,
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RestartBroker => write!(f, "broker restart (docker restart)"),
            Self::BrokerDown => write!(
                f,
                "broker down {} s while uploads go on (docker stop, docker start)",
                crate::outage::OUTAGE.as_secs()
            ),
            Self::CloseConnections => write!(f, "close all connections (rabbitmqctl)"),
            Self::KillWorker(n) => write!(f, "SIGKILL chaos-w{} holding unacked jobs", n + 1),
            Self::FreezeWorker(n) => {
                write!(f, "SIGSTOP chaos-w{} past the heartbeat, SIGCONT", n + 1)
            }
            Self::MemoryAlarm => write!(f, "memory alarm raised, then lifted"),
            Self::DiskAlarm => write!(f, "disk alarm raised, then lifted"),
            Self::Plant(plant) => write!(f, "poison: {plant}"),
            Self::KillNode(NodeTarget::Producers) => {
                write!(f, "the producer's node killed, then started again")
            }
            Self::KillNode(NodeTarget::Leaders) => {
                write!(f, "the leaders' node killed, then started again")
            }
            Self::CutNode => write!(f, "the leaders' node cut off the network, then put back"),
        }
    }
}

/// A fault and when it is planned.
#[derive(Debug, Clone)]
pub struct Planned {
    /// From the start of the load.
    pub offset: Duration,
    pub fault: Fault,
}

/// The whole schedule of `profile`, in order.
pub fn plan(profile: &Profile) -> Vec<Planned> {
    let workers = profile.workers.max(1);
    let kills = (0..profile.kills).map(|n| Fault::KillWorker(n % workers));
    let freezes = (0..profile.freezes).map(|n| Fault::FreezeWorker((n + 1) % workers));
    let node_kills = (0..profile.node_kills).map(|n| {
        Fault::KillNode(if n % 2 == 0 {
            NodeTarget::Producers
        } else {
            NodeTarget::Leaders
        })
    });
    let mut groups: Vec<Vec<Fault>> = vec![
        vec![Fault::RestartBroker; profile.restarts],
        vec![Fault::BrokerDown; profile.outages],
        vec![Fault::CloseConnections; profile.closes],
        kills.collect(),
        freezes.collect(),
        node_kills.collect(),
        vec![Fault::CutNode; profile.node_cuts],
    ];
    if profile.alarms_and_poison {
        groups.push(vec![Fault::MemoryAlarm]);
        groups.push(vec![Fault::DiskAlarm]);
        groups.push(Plant::ALL.iter().map(|p| Fault::Plant(*p)).collect());
    }
    // Each group spread evenly: its i-th of n sits at (i + 0.5) / n of the run.
    let mut placed: Vec<(f64, usize, Fault)> = Vec::new();
    for (group, faults) in groups.iter().enumerate() {
        let n = faults.len() as f64;
        for (i, fault) in faults.iter().enumerate() {
            placed.push(((i as f64 + 0.5) / n, group, *fault));
        }
    }
    placed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut offset = profile.warm_up;
    placed
        .into_iter()
        .map(|(_, _, fault)| {
            let planned = Planned { offset, fault };
            offset += fault.slot();
            planned
        })
        .collect()
}

/// The planned length of the load phase: the last fault's offset plus its slot.
pub fn planned_length(schedule: &[Planned]) -> Duration {
    schedule
        .last()
        .map_or(Duration::ZERO, |p| p.offset + p.fault.slot())
}

/// `m:ss`.
pub fn clock(offset: Duration) -> String {
    let secs = offset.as_secs();
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The schedule as printed at the start (and written to CHAOS.md).
pub fn describe(schedule: &[Planned]) -> String {
    let mut text = String::from("| # | planned at | fault |\n| ---: | ---: | --- |\n");
    for (n, planned) in schedule.iter().enumerate() {
        text.push_str(&format!(
            "| {} | +{} | {} |\n",
            n + 1,
            clock(planned.offset),
            planned.fault
        ));
    }
    text
}
