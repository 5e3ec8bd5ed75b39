//! Real infrastructure for the integration tests and benchmarks: RabbitMQ from
//! testcontainers, its management API, and condition waits.

pub mod broker;
pub mod management;
pub mod wait;

pub use broker::{Broker, Vhost};
pub use management::{ClientConnection, Management, QueueStats};
pub use wait::wait_until;
