//! The RabbitMQ management HTTP API, for what AMQP cannot tell: unacked counts, consumers,
//! and closing other clients' connections.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::wait::wait_until;

/// A client for one broker's management API, as `guest`.
#[derive(Debug, Clone)]
pub struct Management {
    base: String,
    http: reqwest::Client,
}

/// A queue's counters.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct QueueStats {
    /// Waiting to be delivered.
    #[serde(default)]
    pub messages_ready: u64,
    /// Delivered, not yet acked.
    #[serde(default)]
    pub messages_unacknowledged: u64,
    /// Subscribed consumers.
    #[serde(default)]
    pub consumers: u64,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Consumer {
    queue: Named,
}

/// Percent-encodes a path segment (vhost, queue and connection names hold `/`, spaces, `>`).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Management {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:15672`).
    #[must_use]
    pub fn new(base: String) -> Self {
        Self {
            base,
            // No pooled connections: a pooled socket belongs to the runtime that opened it, and
            // each test has its own runtime.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap_or_default(),
        }
    }

    /// The API's base URL, e.g. `http://127.0.0.1:15672`.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::Response, String> {
        self.http
            .request(method.clone(), format!("{}/api/{path}", self.base))
            .basic_auth("guest", Some("guest"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let response = self.request(reqwest::Method::GET, path).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {path}: {status}"));
        }
        response
            .json()
            .await
            .map_err(|e| format!("GET {path}: {e}"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}/api/{path}", self.base))
            .basic_auth("guest", Some("guest"))
            .header("X-Reason", "test fault injection")
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        if status.is_success()
            || status == reqwest::StatusCode::NOT_FOUND && method == reqwest::Method::DELETE
        {
            Ok(())
        } else {
            Err(format!(
                "{method} {path}: {status} {}",
                response.text().await.unwrap_or_default()
            ))
        }
    }

    /// Waits until the API answers (it starts a little after AMQP).
    pub async fn wait_until_up(&self) -> Result<(), String> {
        wait_until(
            Duration::from_secs(60),
            "the management API to answer",
            || async {
                self.request(reqwest::Method::GET, "overview")
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await
    }

    /// The broker's RabbitMQ version.
    pub async fn version(&self) -> Result<String, String> {
        let overview: serde_json::Value = self.get_json("overview").await?;
        overview["rabbitmq_version"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no rabbitmq_version in the overview".to_owned())
    }

    /// Creates `vhost` and gives `guest` every right in it.
    pub async fn create_vhost(&self, vhost: &str) -> Result<(), String> {
        let path = format!("vhosts/{}", encode(vhost));
        self.send(reqwest::Method::PUT, &path, Some(json!({})))
            .await?;
        let rights = json!({"configure": ".*", "write": ".*", "read": ".*"});
        self.send(
            reqwest::Method::PUT,
            &format!("permissions/{}/guest", encode(vhost)),
            Some(rights),
        )
        .await
    }

    /// Imports a definitions document (users, permissions, topology), as an administrator
    /// would, or as the broker does at boot from `load_definitions`.
    pub async fn import_definitions(&self, definitions: &serde_json::Value) -> Result<(), String> {
        self.send(
            reqwest::Method::POST,
            "definitions",
            Some(definitions.clone()),
        )
        .await
    }

    /// Deletes `vhost` with everything in it.
    pub async fn delete_vhost(&self, vhost: &str) -> Result<(), String> {
        self.send(
            reqwest::Method::DELETE,
            &format!("vhosts/{}", encode(vhost)),
            None,
        )
        .await
    }

    /// A queue's counters.
    pub async fn queue(&self, vhost: &str, queue: &str) -> Result<QueueStats, String> {
        self.get_json(&format!("queues/{}/{}", encode(vhost), encode(queue)))
            .await
    }

    /// The arguments a queue was declared with.
    pub async fn queue_arguments(
        &self,
        vhost: &str,
        queue: &str,
    ) -> Result<serde_json::Value, String> {
        let queue: serde_json::Value = self
            .get_json(&format!("queues/{}/{}", encode(vhost), encode(queue)))
            .await?;
        Ok(queue["arguments"].clone())
    }

    /// The queues that have at least one consumer in `vhost`, one entry per consumer.
    pub async fn consumed_queues(&self, vhost: &str) -> Result<Vec<String>, String> {
        let consumers: Vec<Consumer> = self
            .get_json(&format!("consumers/{}", encode(vhost)))
            .await?;
        Ok(consumers.into_iter().map(|c| c.queue.name).collect())
    }

    /// Deletes a queue (its consumers are cancelled by the broker).
    pub async fn delete_queue(&self, vhost: &str, queue: &str) -> Result<(), String> {
        self.send(
            reqwest::Method::DELETE,
            &format!("queues/{}/{}", encode(vhost), encode(queue)),
            None,
        )
        .await
    }
}

/// A queue's name and counters, from the list of a vhost's queues.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Ready plus unacked.
    #[serde(default)]
    pub messages: u64,
    /// Waiting to be delivered.
    #[serde(default)]
    pub messages_ready: u64,
    /// Delivered, not yet acked.
    #[serde(default)]
    pub messages_unacknowledged: u64,
}

/// The broker node's resource alarms.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct Alarms {
    /// The memory high watermark is exceeded.
    #[serde(default)]
    pub mem_alarm: bool,
    /// Free disk space is below the limit.
    #[serde(default)]
    pub disk_free_alarm: bool,
}

#[derive(Debug, Deserialize)]
struct ConnectionEntry {
    name: String,
    #[serde(default)]
    client_properties: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct ChannelEntry {
    #[serde(default)]
    connection_details: Option<Named>,
    #[serde(default)]
    messages_unacknowledged: u64,
}

impl Management {
    /// Every queue of `vhost` with its counters.
    pub async fn queues(&self, vhost: &str) -> Result<Vec<QueueInfo>, String> {
        self.get_json(&format!("queues/{}", encode(vhost))).await
    }

    /// Deliveries not yet acked on the channels of the connection(s) a client named
    /// `client_name`; `None` when no such connection is open.
    pub async fn unacked_of_client(&self, client_name: &str) -> Result<Option<u64>, String> {
        let connections: Vec<ConnectionEntry> = self.get_json("connections").await?;
        let names: Vec<&str> = connections
            .iter()
            .filter(|c| c.client_properties["connection_name"].as_str() == Some(client_name))
            .map(|c| c.name.as_str())
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let channels: Vec<ChannelEntry> = self.get_json("channels").await?;
        Ok(Some(
            channels
                .iter()
                .filter(|c| {
                    c.connection_details
                        .as_ref()
                        .is_some_and(|d| names.contains(&d.name.as_str()))
                })
                .map(|c| c.messages_unacknowledged)
                .sum(),
        ))
    }

    /// The first node's resource alarms.
    pub async fn alarms(&self) -> Result<Alarms, String> {
        let nodes: Vec<Alarms> = self.get_json("nodes").await?;
        nodes
            .into_iter()
            .next()
            .ok_or_else(|| "the broker lists no node".to_owned())
    }

    /// The cluster's nodes that this node sees running, by name (`rabbit@host`).
    pub async fn running_nodes(&self) -> Result<Vec<String>, String> {
        let nodes: Vec<serde_json::Value> = self.get_json("nodes").await?;
        Ok(nodes
            .iter()
            .filter(|node| node["running"].as_bool() == Some(true))
            .filter_map(|node| node["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Network partitions this node reports (names of the nodes it is cut off from).
    pub async fn partitions(&self) -> Result<Vec<String>, String> {
        let nodes: Vec<serde_json::Value> = self.get_json("nodes").await?;
        Ok(nodes
            .iter()
            .filter_map(|node| node["partitions"].as_array())
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect())
    }

    /// The node (`rabbit@host`) of each connection whose client name starts with `prefix`.
    pub async fn nodes_of_clients(&self, prefix: &str) -> Result<Vec<String>, String> {
        let connections: Vec<serde_json::Value> = self.get_json("connections").await?;
        Ok(connections
            .iter()
            .filter(|c| {
                c["client_properties"]["connection_name"]
                    .as_str()
                    .is_some_and(|name| name.starts_with(prefix))
            })
            .filter_map(|c| c["node"].as_str().map(str::to_owned))
            .collect())
    }

    /// The node (`rabbit@host`) holding a quorum queue's leader.
    pub async fn queue_leader(&self, vhost: &str, queue: &str) -> Result<String, String> {
        let queue: serde_json::Value = self
            .get_json(&format!("queues/{}/{}", encode(vhost), encode(queue)))
            .await?;
        queue["leader"]
            .as_str()
            .or_else(|| queue["node"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("no leader in {queue}"))
    }

    /// The overview document (versions, totals, message rates).
    pub async fn overview(&self) -> Result<serde_json::Value, String> {
        self.get_json("overview").await
    }
}
