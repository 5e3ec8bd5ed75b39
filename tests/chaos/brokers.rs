//! The broker under test: one node, or a three-node cluster (`--cluster`) whose faults hit
//! one node at a time while the harness talks to a node that is up.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::anyhow;
use support::cluster::NODES;
use support::{Broker, Cluster, Management};

/// One broker or a cluster.
pub enum Brokers {
    One(Box<Broker>),
    Cluster {
        cluster: Cluster,
        /// The node the harness asks (management API, `rabbitmqctl`): never a victim.
        asked: AtomicUsize,
    },
}

impl Brokers {
    /// A broker on the fixed host ports given, or a cluster (its nodes pick their own).
    pub async fn start(cluster: bool, amqp_port: u16, ui_port: u16) -> anyhow::Result<Self> {
        if cluster {
            let cluster = Cluster::start("chaos").await.map_err(|e| anyhow!(e))?;
            return Ok(Self::Cluster {
                cluster,
                asked: AtomicUsize::new(0),
            });
        }
        let broker = Broker::dedicated_on_ports(amqp_port, ui_port)
            .await
            .map_err(|e| anyhow!(e))?;
        Ok(Self::One(Box::new(broker)))
    }

    /// `AMQP_URL` for the vhost `/`: one URL, or every node's.
    pub fn amqp_url(&self) -> String {
        match self {
            Self::One(broker) => broker.amqp_url("/"),
            Self::Cluster { cluster, .. } => cluster.amqp_urls("/"),
        }
    }

    /// The management API of the broker, or of the node the harness asks.
    pub fn management(&self) -> &Management {
        match self {
            Self::One(broker) => broker.management(),
            Self::Cluster { cluster, asked } => {
                &cluster.nodes[asked.load(Ordering::Relaxed)].management
            }
        }
    }

    /// `rabbitmqctl` on the broker, or on the node the harness asks.
    pub async fn rabbitmqctl(&self, args: &[&str]) -> Result<String, String> {
        match self {
            Self::One(broker) => broker.rabbitmqctl(args).await,
            Self::Cluster { cluster, asked } => {
                cluster
                    .rabbitmqctl(asked.load(Ordering::Relaxed), args)
                    .await
            }
        }
    }

    /// The single broker, for the faults that stop or restart it.
    pub fn one(&self) -> anyhow::Result<&Broker> {
        match self {
            Self::One(broker) => Ok(broker),
            Self::Cluster { .. } => Err(anyhow!("a single-broker fault in a cluster run")),
        }
    }

    /// The cluster, for node faults.
    pub fn cluster(&self) -> anyhow::Result<&Cluster> {
        match self {
            Self::Cluster { cluster, .. } => Ok(cluster),
            Self::One(_) => Err(anyhow!("a node fault in a single-broker run")),
        }
    }

    /// The cluster, for node faults; the harness asks another node than `victim` from now.
    pub fn cluster_sparing(&self, victim: usize) -> anyhow::Result<&Cluster> {
        match self {
            Self::Cluster { cluster, asked } => {
                asked.store((victim + 1) % NODES, Ordering::Relaxed);
                Ok(cluster)
            }
            Self::One(_) => Err(anyhow!("a node fault in a single-broker run")),
        }
    }

    /// "one node" or "a three-node cluster", for the report.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::One(_) => "one node",
            Self::Cluster { .. } => "a three-node cluster",
        }
    }
}
