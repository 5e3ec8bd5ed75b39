//! Long-lived confirm channels on pooled connections.
//!
//! deadpool-lapin pools connections, not channels, and opening a channel per publish is slow
//! churn. So the publisher keeps a few "lanes": each holds one pooled connection and one
//! channel in confirm mode, shared by every concurrent publish that lands on it. A lane whose
//! channel or connection died is rebuilt on next use: a fresh connection from the pool (the
//! pool's recycle check drops dead ones), a new confirm channel, and the topology re-declared.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_lapin::{Object, Pool};
use lapin::Channel;
use lapin::options::ConfirmSelectOptions;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::PublishError;
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

    fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
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
    pool: Pool,
    slots: Vec<Mutex<Option<Lane>>>,
    next: AtomicUsize,
    topology: Topology,
}

impl Lanes {
    pub(super) fn new(pool: Pool, count: usize, topology: Topology) -> Self {
        Self {
            pool,
            slots: (0..count.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            topology,
        }
    }

    /// A usable lane, rebuilt first if its channel or connection is gone.
    pub(super) async fn get(&self) -> Result<Lane, PublishError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        if let Some(lane) = slot.as_ref().filter(|lane| lane.is_usable()) {
            return Ok(lane.clone());
        }
        // Keep a live connection whose channel alone was closed; otherwise let it go back to
        // the pool, whose recycle check discards it.
        let connection = match slot.take() {
            Some(old) if old.connection.status().connected() => old.connection,
            _ => Arc::new(
                self.pool
                    .get()
                    .await
                    .map_err(|e| PublishError::connection("getting a pooled connection", e))?,
            ),
        };
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| PublishError::connection("opening a channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PublishError::connection("enabling publisher confirms", e))?;
        self.topology.declare(&channel).await?;
        let lane = Lane {
            connection,
            channel,
        };
        *slot = Some(lane.clone());
        Ok(lane)
    }

    /// Closes every lane's channel and connection, then the pool.
    pub(super) async fn close(&self) {
        for slot in &self.slots {
            if let Some(lane) = slot.lock().await.take() {
                // Best effort: the broker may already be gone, and nothing is pending.
                let _ = lane.channel.close(200, "publisher closing".into()).await;
                let _ = lane.connection.close(200, "publisher closing".into()).await;
            }
        }
        self.pool.close();
    }
}
