//! Real infrastructure for the integration tests and benchmarks: RabbitMQ from
//! testcontainers, its management API, PostgreSQL, condition waits, and the chaos run's
//! test kinds.

pub mod broker;
pub mod browser;
pub mod chaos;
pub mod cluster;
pub mod images;
pub mod logs;
pub mod management;
pub mod postgres;
pub mod wait;

pub use broker::{Broker, Vhost};
pub use cluster::Cluster;
pub use management::{Management, QueueStats};
pub use postgres::{AppDatabase, Postgres, test_roles, unique_prefix};
pub use wait::wait_until;

/// A local port nothing listens on now (the kernel's pick; whoever needs it binds it a
/// moment later).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
}
