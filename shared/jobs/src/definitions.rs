//! A RabbitMQ definitions file for a least-privilege deployment: the topology, a vhost, and
//! one user per role, for the broker to import at boot (`load_definitions`).
//!
//! The topology comes from [`Topology::describe`], so the file and the code cannot disagree.
//! Passwords are stored as RabbitMQ's salted SHA-256 hashes; importing users at boot also
//! keeps the broker from creating its default `guest` user.

use base64::Engine;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::topology::{DEAD_LETTER_EXCHANGE, EXCHANGE, QUARANTINE_EXCHANGE, Topology};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, and the management UI.
    Administrator,
    /// Publish to `jobs` and (delayed jobs) its wait exchanges, nothing else.
    Publisher,
    /// Consume the work and quarantine queues; publish retries, dead letters, quarantined
    /// suspects and follow-up jobs.
    Consumer,
}

/// A user of the definitions file.
#[derive(Debug, Clone)]
pub struct BrokerUser {
    /// The user name.
    pub name: String,
    /// The password (only its hash is written).
    pub password: String,
    /// What it may do.
    pub role: Role,
}

/// RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password)).
#[must_use]
pub fn password_hash(password: &str) -> String {
    let salt: [u8; 4] = std::array::from_fn(|_| fastrand::u8(..));
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize();
    let mut salted = salt.to_vec();
    salted.extend_from_slice(&digest);
    base64::engine::general_purpose::STANDARD.encode(salted)
}

/// (configure, write, read) permission patterns of `role` for `topology`.
fn permissions(role: Role, topology: &Topology) -> (String, String, String) {
    let exchange = regex_escape(EXCHANGE);
    match role {
        Role::Administrator => (".*".into(), ".*".into(), ".*".into()),
        // The wait exchanges too: a delayed job is published to one.
        Role::Publisher => (
            "^$".into(),
            format!("^({exchange}|{exchange}\\.wait\\.[0-9]+)$"),
            "^$".into(),
        ),
        Role::Consumer => {
            let dlx = regex_escape(DEAD_LETTER_EXCHANGE);
            let quarantine = regex_escape(QUARANTINE_EXCHANGE);
            let kinds = topology.kinds().join("|");
            (
                "^$".into(),
                format!("^({exchange}|{dlx}|{quarantine}|{exchange}\\.wait\\.[0-9]+)$"),
                format!("^{exchange}\\.({kinds})(\\.quarantine)?$"),
            )
        }
    }
}

fn regex_escape(name: &str) -> String {
    name.replace('.', "\\.")
}

fn json_arguments(args: &FieldTable) -> Value {
    let map: Map<String, Value> = args
        .inner()
        .iter()
        .map(|(key, value)| {
            let value = match value {
                AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
                AMQPValue::LongInt(n) => json!(n),
                other => json!(format!("{other:?}")),
            };
            (key.to_string(), value)
        })
        .collect();
    Value::Object(map)
}

/// The definitions document for `vhost`.
#[must_use]
pub fn broker_definitions(topology: &Topology, vhost: &str, users: &[BrokerUser]) -> Value {
    let description = topology.describe();
    let user_entries: Vec<Value> = users
        .iter()
        .map(|user| {
            let tags = if user.role == Role::Administrator {
                vec!["administrator"]
            } else {
                vec![]
            };
            json!({
                "name": user.name,
                "password_hash": password_hash(&user.password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": tags,
            })
        })
        .collect();
    let permission_entries: Vec<Value> = users
        .iter()
        .map(|user| {
            let (configure, write, read) = permissions(user.role, topology);
            json!({"user": user.name, "vhost": vhost, "configure": configure, "write": write, "read": read})
        })
        .collect();
    let exchanges: Vec<Value> = description
        .exchanges
        .iter()
        .map(|(name, kind)| {
            json!({"name": name, "vhost": vhost, "type": kind, "durable": true,
                   "auto_delete": false, "internal": false, "arguments": {}})
        })
        .collect();
    let queues: Vec<Value> = description
        .queues
        .iter()
        .map(|(name, args)| {
            json!({"name": name, "vhost": vhost, "durable": true, "auto_delete": false,
                   "arguments": json_arguments(args)})
        })
        .collect();
    let bindings: Vec<Value> = description
        .bindings
        .iter()
        .map(|(exchange, queue, key)| {
            json!({"source": exchange, "vhost": vhost, "destination": queue,
                   "destination_type": "queue", "routing_key": key, "arguments": {}})
        })
        .collect();
    json!({
        "users": user_entries,
        "vhosts": [{"name": vhost}],
        "permissions": permission_entries,
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::new(["send_email", "resize"]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_password_hash_is_salt_then_sha256_of_salt_and_password() {
        let hash = password_hash("secret");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&hash)
            .unwrap_or_default();
        assert_eq!(bytes.len(), 4 + 32);
        let expected = Sha256::new()
            .chain_update(&bytes[..4])
            .chain_update(b"secret")
            .finalize();
        assert_eq!(bytes[4..], expected[..]);
        assert_ne!(password_hash("secret"), hash, "salted hashes differ");
    }

    #[test]
    fn each_role_gets_only_what_it_needs() {
        let (configure, write, read) = permissions(Role::Consumer, &topology());
        assert_eq!(configure, "^$");
        assert_eq!(
            write,
            "^(jobs|jobs\\.dlx|jobs\\.quarantine|jobs\\.wait\\.[0-9]+)$"
        );
        assert_eq!(read, "^jobs\\.(resize|send_email)(\\.quarantine)?$");
        assert_eq!(
            permissions(Role::Publisher, &topology()),
            (
                "^$".to_owned(),
                "^(jobs|jobs\\.wait\\.[0-9]+)$".to_owned(),
                "^$".to_owned()
            )
        );
    }

    #[test]
    fn the_document_lists_the_whole_topology() {
        let users = [BrokerUser {
            name: "admin".into(),
            password: "x".into(),
            role: Role::Administrator,
        }];
        let doc = broker_definitions(&topology(), "/", &users);
        let described = topology().describe();
        assert_eq!(
            doc["queues"].as_array().map(Vec::len),
            Some(described.queues.len())
        );
        assert_eq!(doc["users"][0]["tags"][0], "administrator");
        let dlq = doc["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["name"] == "jobs.resize"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(dlq["arguments"]["x-queue-type"], "quorum");
        assert_eq!(dlq["arguments"]["x-delivery-limit"], 20);
        let dead = doc["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["name"] == "jobs.resize.dlq"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(dead["arguments"]["x-delivery-limit"], i64::from(i32::MAX));
    }
}
