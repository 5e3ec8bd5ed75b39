//! Node faults of a cluster run: a node killed and started again, or cut off the network
//! and put back, while uploads and effect jobs go on. Uploads must all be accepted
//! meanwhile (the outbox holds them if publishing pauses), and the books at the end show
//! whether a job was lost.

use std::time::Duration;

use anyhow::anyhow;
use chrono::Utc;
use support::Cluster;
use tokio::time::Instant;

use crate::faults::{Injected, Injector};
use crate::schedule::NodeTarget;

/// How long a killed node stays down: long enough for its clients to have moved.
const DOWN: Duration = Duration::from_secs(15);
/// Longest wait for new leaders once a node is cut off.
const ELECTION: Duration = Duration::from_secs(120);

impl Injector<'_> {
    pub(crate) async fn kill_node(&self, target: NodeTarget) -> anyhow::Result<Injected> {
        let victim = self.target(target).await?;
        let cluster = self.stack.broker.cluster_sparing(victim)?;
        let began = Utc::now();
        cluster.kill(victim).await.map_err(|e| anyhow!(e))?;
        let killed = Instant::now();
        tokio::time::sleep(DOWN).await;
        cluster.restart(victim).await.map_err(|e| anyhow!(e))?;
        let note = format!(
            "{} killed, down {:.0} s, rejoined {:.1} s after its start",
            cluster.nodes[victim].host,
            DOWN.as_secs_f64(),
            killed.elapsed().saturating_sub(DOWN).as_secs_f64()
        );
        Ok(self.uploads_taken(began, note))
    }

    pub(crate) async fn cut_node(&self) -> anyhow::Result<Injected> {
        let victim = self.target(NodeTarget::Leaders).await?;
        let cluster = self.stack.broker.cluster_sparing(victim)?;
        let began = Utc::now();
        cluster.disconnect(victim).await.map_err(|e| anyhow!(e))?;
        let cut = Instant::now();
        let asked = (victim + 1) % support::cluster::NODES;
        let elected = support::wait_until(ELECTION, "new leaders", || async {
            leader(cluster, asked).await.is_ok_and(|now| now != victim)
        })
        .await;
        let election = cut.elapsed();
        cluster.reconnect(victim).await.map_err(|e| anyhow!(e))?;
        let note = format!(
            "{} cut off; new leaders after {:.1} s; whole again {:.1} s after the cut",
            cluster.nodes[victim].host,
            election.as_secs_f64(),
            cut.elapsed().as_secs_f64()
        );
        let mut injected = self.uploads_taken(began, note);
        if let Err(error) = elected {
            injected.misses.push(error);
        }
        Ok(injected)
    }

    /// The node a fault aims at.
    async fn target(&self, target: NodeTarget) -> anyhow::Result<usize> {
        let cluster = self.stack.broker.cluster()?;
        match target {
            NodeTarget::Leaders => leader(cluster, 0).await.map_err(|e| anyhow!(e)),
            NodeTarget::Producers => cluster
                .node_of_client("producer publisher")
                .await
                .map_err(|e| anyhow!(e)),
        }
    }

    /// The fault's note, and a miss if an upload was refused while it lasted.
    fn uploads_taken(&self, began: chrono::DateTime<Utc>, note: String) -> Injected {
        let accepted = self.books.answered_since(202, began);
        let refused = self.books.answered_since(503, began);
        let mut injected = Injected::now(format!(
            "{note}: {accepted} uploads accepted meanwhile, {refused} refused"
        ));
        if refused > 0 {
            injected
                .misses
                .push(format!("{refused} uploads refused while a node was lost"));
        }
        injected
    }
}

/// The node holding the leader of the first chaos kind's queue, as node `asked` sees it.
async fn leader(cluster: &Cluster, asked: usize) -> Result<usize, String> {
    let queue = rabbitmq_jobs::work_queue(support::chaos::KINDS[0]);
    cluster.leader_of(&queue, asked).await
}
