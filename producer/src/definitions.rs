//! `producer broker-definitions`: the broker's definitions file for this app's topology.

use std::io::Write;

use anyhow::Context;
use rabbitmq_jobs::{BrokerUser, Role, Topology, broker_definitions};

use crate::DefinitionsSettings;

/// Writes the definitions to `--output` or standard output.
pub fn write(settings: &DefinitionsSettings) -> anyhow::Result<()> {
    let topology = Topology::new(crate::catalog()?.kinds()).context("building the topology")?;
    let user = |name: &str, password: &str, role| BrokerUser {
        name: name.to_owned(),
        password: password.to_owned(),
        role,
    };
    let users = [
        user(
            &settings.admin_user,
            &settings.admin_password,
            Role::Administrator,
        ),
        user(
            &settings.producer_user,
            &settings.producer_password,
            Role::Publisher,
        ),
        user(
            &settings.worker_user,
            &settings.worker_password,
            Role::Consumer,
        ),
    ];
    let document = broker_definitions(&topology, &settings.vhost, &users);
    let text = serde_json::to_string_pretty(&document).context("encoding the definitions")?;
    match &settings.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout"),
    }
}
