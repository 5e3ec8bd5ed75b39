//! Long-lived confirm channels on pooled connections.
//!
//! deadpool-lapin pools connections, not channels, and opening a channel per publish is slow
//! churn. So the publisher keeps a few "lanes": each holds one pooled connection and one
//! channel in confirm mode, shared by every concurrent publish that lands on it. A lane whose
//! channel or connection died is rebuilt on next use: a fresh connection from the pool (the
//! pool's recycle check drops dead ones), a new confirm channel, and the topology re-declared.
//! Getting a lane has a deadline: a broker that accepts the socket and never answers must not
//! hold every publisher waiting on a slot's lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_lapin::{Object, Pool};
use lapin::Channel;
use lapin::options::ConfirmSelectOptions;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::PublishError;
use crate::instruments::{self, Role};
use crate::nodes::Nodes;
use crate::topology::Topology;

/// How often a blocked connection is checked for being unblocked.
const BLOCKED_POLL: Duration = Duration::from_millis(50);

/// One confirm channel and the pooled connection it lives on.
#[derive(Clone)]
pub(super) struct Lane {
    connection: Arc<Object>,
    pub(super) channel: Channel,
}

impl Lane {
    fn is_usable(&self) -> bool {
        self.channel.status().connected() && self.connection.status().connected()
    }

    pub(super) fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
    }

    /// Closes this lane's connection in the background, so that the next publish builds a
    /// lane afresh, on the next node: for a lane whose confirm never came (its node may be
    /// cut off from the rest of the cluster while its socket stays up).
    pub(super) fn abandon(&self) {
        let connection = Arc::clone(&self.connection);
        tokio::spawn(async move {
            let close = connection.close(200, "no confirm in time; reconnecting".into());
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
        });
    }

    /// Waits while the broker blocks this connection (a resource alarm), at most `limit`.
    pub(super) async fn wait_unblocked(&self, limit: Duration) -> Result<(), PublishError> {
        let start = Instant::now();
        while self.is_blocked() {
            if start.elapsed() >= limit {
                return Err(PublishError::Blocked(limit));
            }
            tokio::time::sleep(BLOCKED_POLL).await;
        }
        Ok(())
    }

    /// Resolves once the connection has stayed blocked for `limit` without a break: a confirm
    /// awaited past this point is stuck behind a resource alarm.
    pub(super) async fn blocked_for(&self, limit: Duration) -> PublishError {
        let mut since: Option<Instant> = None;
        loop {
            tokio::time::sleep(BLOCKED_POLL).await;
            if !self.is_blocked() {
                since = None;
                continue;
            }
            let start = *since.get_or_insert_with(Instant::now);
            if start.elapsed() >= limit {
                return PublishError::Blocked(limit);
            }
        }
    }
}

/// The publisher's lanes, picked round-robin.
pub(super) struct Lanes {
    /// One pool per node, in the order of `nodes`.
    pools: Vec<Pool>,
    nodes: Nodes,
    slots: Vec<Mutex<Option<Lane>>>,
    next: AtomicUsize,
    topology: Topology,
    /// The longest a caller waits for a lane, its rebuild included.
    timeout: Duration,
}

/// How long closing a lane may take: during an alarm or a partition the broker may never
/// answer the close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl Lanes {
    pub(super) fn new(
        pools: Vec<Pool>,
        nodes: Nodes,
        count: usize,
        topology: Topology,
        timeout: Duration,
    ) -> Self {
        Self {
            pools,
            nodes,
            slots: (0..count.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            topology,
            timeout,
        }
    }

    /// A usable lane, rebuilt first if its channel or connection is gone; an error after
    /// the lane timeout.
    pub(super) async fn get(&self) -> Result<Lane, PublishError> {
        tokio::time::timeout(self.timeout, self.get_unbounded())
            .await
            .unwrap_or_else(|_| {
                Err(PublishError::connection(
                    "opening a channel",
                    format!("no usable connection within {:?}", self.timeout),
                ))
            })
    }

    async fn get_unbounded(&self) -> Result<Lane, PublishError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        if let Some(lane) = slot.as_ref().filter(|lane| lane.is_usable()) {
            return Ok(lane.clone());
        }
        // Keep a live connection whose channel alone was closed; otherwise let it go back to
        // the pool, whose recycle check discards it. It must be dropped before asking the pool
        // for another: held across the wait, it keeps the pool full, and the wait ends only at
        // the pool's timeout (a 5 s stall after every lost connection).
        let old = slot.take();
        let lost = old.is_some();
        let reusable = old
            .map(|old| old.connection)
            .filter(|connection| connection.status().connected());
        // A lane had been built before and its connection is gone: a reconnect.
        let reconnect = lost && reusable.is_none();
        let connection = match reusable {
            Some(connection) => connection,
            None => Arc::new(self.connect().await?),
        };
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| PublishError::connection("opening a channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PublishError::connection("enabling publisher confirms", e))?;
        // A kind the broker refuses is logged by `declare`; publishing it fails as unroutable,
        // and the other kinds go on.
        self.topology.declare(&connection).await?;
        let lane = Lane {
            connection,
            channel,
        };
        *slot = Some(lane.clone());
        if reconnect {
            instruments::reconnected(Role::Publisher);
        }
        Ok(lane)
    }

    /// A pooled connection to the first node that answers, starting one node further along
    /// than the last new connection did.
    async fn connect(&self) -> Result<Object, PublishError> {
        // The pools are built from the nodes in their order: a node's index is its pool's.
        let connecting = self.nodes.first_answering(|index| self.pools[index].get());
        connecting.await.map_err(|error| {
            let why = error.map_or_else(|| "no node configured".to_owned(), |e| e.to_string());
            PublishError::connection("getting a pooled connection", why)
        })
    }

    /// Closes every lane's channel and connection, then the pools; each lane gets
    /// [`CLOSE_TIMEOUT`], after which it is dropped.
    pub(super) async fn close(&self) {
        for slot in &self.slots {
            let Ok(mut slot) = tokio::time::timeout(CLOSE_TIMEOUT, slot.lock()).await else {
                tracing::debug!("a lane is busy; dropping it with the pool");
                continue;
            };
            if let Some(lane) = slot.take() {
                // Best effort: the broker may already be gone, and nothing is pending.
                let close = async {
                    let _ = lane.channel.close(200, "publisher closing".into()).await;
                    let _ = lane.connection.close(200, "publisher closing".into()).await;
                };
                if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
                    tracing::debug!("closing a lane timed out; dropping it");
                }
            }
        }
        for pool in &self.pools {
            pool.close();
        }
    }
}

impl Lanes {
    /// Whether this publisher declares `kind`'s queues: a delayed job goes to a wait queue,
    /// which takes any routing key, so its kind is checked here instead of by the broker.
    pub(super) fn serves(&self, kind: &str) -> bool {
        self.topology.kinds().iter().any(|k| k == kind)
    }
}
