//! Queue depths and rates for the dashboard, from RabbitMQ's management API (AMQP tells a
//! queue's ready count and consumers, but neither what is in progress nor any rate).

use std::time::Duration;

use rabbitmq_jobs::{WaitTier, dead_letter_queue, quarantine_queue, work_queue};
use serde::Serialize;
use serde_json::Value;

/// The longest one call to the management API may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client of the management API for one vhost.
#[derive(Debug, Clone)]
pub struct BrokerStats {
    http: reqwest::Client,
    /// `http://user:password@host:15672`, without a trailing slash.
    base: String,
    vhost: String,
}

/// Every kind's queues.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub kinds: Vec<KindQueues>,
    /// Jobs waiting in the wait queues: retries and delayed jobs, all kinds together.
    pub waiting: u64,
}

/// One kind's queues, as the broker counts them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindQueues {
    pub kind: String,
    /// Waiting for a worker.
    pub ready: u64,
    /// Taken by a worker, not yet acked: running (or being settled).
    pub in_progress: u64,
    pub consumers: u64,
    /// In the dead-letter queue.
    pub dead: u64,
    /// In quarantine, waiting to run alone.
    pub quarantined: u64,
    /// Waiting for their next attempt (from the domains' job tables, not the broker: the
    /// wait queues are shared by every kind).
    pub retrying: i64,
    /// Jobs entering the work queue per second (new, replayed and retried).
    pub incoming_rate: f64,
    /// Jobs acked per second (finished one way or another).
    pub done_rate: f64,
    /// Jobs dead-lettered per second.
    pub dead_rate: f64,
}

/// The management API failed or answered something unexpected.
#[derive(Debug, thiserror::Error)]
#[error("management API: {0}")]
pub struct StatsError(String);

impl BrokerStats {
    /// A client of the management API at `base` (credentials in the URL) for `vhost`.
    pub fn new(base: &str, vhost: &str) -> Result<Self, StatsError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| StatsError(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            vhost: vhost.to_owned(),
        })
    }

    /// Every kind's queues, and the wait queues' total.
    #[tracing::instrument(skip_all)]
    pub async fn overview(&self, kinds: &[String]) -> Result<Overview, StatsError> {
        let vhost = self.vhost.replace('%', "%25").replace('/', "%2F");
        let url = format!("{}/api/queues/{vhost}", self.base);
        let response = self.http.get(&url).send().await;
        let response = response.map_err(|e| StatsError(without_url(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(StatsError(format!("GET /api/queues answered {status}")));
        }
        let queues: Vec<Value> = response
            .json()
            .await
            .map_err(|e| StatsError(without_url(&e)))?;
        let find = |name: &str| queues.iter().find(|q| q["name"] == name);
        let count =
            |name: &str, field: &str| find(name).map_or(0, |q| q[field].as_u64().unwrap_or(0));
        let rate = |name: &str, stat: &str| {
            find(name).map_or(0.0, |q| {
                q["message_stats"][stat]["rate"].as_f64().unwrap_or(0.0)
            })
        };
        let kinds = kinds
            .iter()
            .map(|kind| {
                let (work, dead) = (work_queue(kind), dead_letter_queue(kind));
                KindQueues {
                    kind: kind.clone(),
                    ready: count(&work, "messages_ready"),
                    in_progress: count(&work, "messages_unacknowledged"),
                    consumers: count(&work, "consumers"),
                    dead: count(&dead, "messages"),
                    quarantined: count(&quarantine_queue(kind), "messages"),
                    incoming_rate: rate(&work, "publish_details"),
                    done_rate: rate(&work, "ack_details"),
                    dead_rate: rate(&dead, "publish_details"),
                    retrying: 0,
                }
            })
            .collect();
        let waiting = WaitTier::all()
            .map(|tier| count(&tier.queue_name(), "messages"))
            .sum();
        Ok(Overview { kinds, waiting })
    }
}

/// reqwest's error without the URL, which holds the password.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "the management API");
    }
    text
}
