//! Settings the order handlers need beyond the database and mail: the warehouse.

use std::time::Duration;

/// Where the warehouse is.
#[derive(Debug, Clone, clap::Args)]
pub struct WarehouseSettings {
    /// Base URL of the warehouse's API; notices go to `{WAREHOUSE_URL}/shipments`.
    #[arg(
        long,
        env = "WAREHOUSE_URL",
        default_value = "http://localhost:8090",
        hide_env_values = true
    )]
    pub warehouse_url: String,
    /// Longest one call to the warehouse may take, connecting included; a call cut short is
    /// tried again with backoff.
    #[arg(long, env = "WAREHOUSE_TIMEOUT", default_value = "10s",
          value_parser = rabbitmq_jobs::parse_duration)]
    pub warehouse_timeout: Duration,
}
