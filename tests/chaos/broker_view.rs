//! The broker's own view of its connections and channels (`rabbitmqctl`), for what the
//! management statistics can miss: under load, and after a restart, they may not list a
//! fresh connection for minutes (a worker that reconnected looked idle to them).

use anyhow::Context;
use serde_json::Value;

use crate::stack::Stack;

/// The connections' pids with the names their clients gave them.
async fn connections(stack: &Stack) -> anyhow::Result<Vec<(String, String)>> {
    let listed = stack
        .rabbitmqctl(&[
            "list_connections",
            "-q",
            "--formatter",
            "json",
            "pid",
            "client_properties",
        ])
        .await?;
    let rows: Vec<Value> = serde_json::from_str(listed.trim())
        .with_context(|| format!("reading list_connections: {listed}"))?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let pid = row["pid"].as_str()?.to_owned();
            Some((pid, connection_name(&row["client_properties"])?))
        })
        .collect())
}

/// `connection_name` out of client properties, as `[name, type, value]` triples or a map.
fn connection_name(properties: &Value) -> Option<String> {
    match properties {
        Value::Array(items) => items.iter().find_map(|item| match item.as_array() {
            Some(triple) if triple.first().and_then(Value::as_str) == Some("connection_name") => {
                triple.last().and_then(Value::as_str).map(str::to_owned)
            }
            _ => None,
        }),
        Value::Object(map) => map
            .get("connection_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// The names clients gave their open connections, one per connection.
pub async fn connection_names(stack: &Stack) -> anyhow::Result<Vec<String>> {
    Ok(connections(stack)
        .await?
        .into_iter()
        .map(|(_, name)| name)
        .collect())
}

/// Deliveries not yet acked on the channels of the connection(s) named `client_name`;
/// `None` when none is open.
pub async fn unacked_of(stack: &Stack, client_name: &str) -> anyhow::Result<Option<u64>> {
    let channels = stack.rabbitmqctl(&[
        "list_channels",
        "-q",
        "--formatter",
        "json",
        "connection",
        "messages_unacknowledged",
    ]);
    let (connections, channels) = tokio::join!(connections(stack), channels);
    let pids: Vec<String> = connections?
        .into_iter()
        .filter(|(_, name)| name == client_name)
        .map(|(pid, _)| pid)
        .collect();
    if pids.is_empty() {
        return Ok(None);
    }
    let channels = channels?;
    let rows: Vec<Value> = serde_json::from_str(channels.trim())
        .with_context(|| format!("reading list_channels: {channels}"))?;
    Ok(Some(
        rows.iter()
            .filter(|row| {
                row["connection"]
                    .as_str()
                    .is_some_and(|c| pids.iter().any(|p| p == c))
            })
            .filter_map(|row| row["messages_unacknowledged"].as_u64())
            .sum(),
    ))
}
