//! The photo pipeline end to end, through the real HTTP API, RabbitMQ and PostgreSQL.

mod bad_uploads;
mod decode_budget;
pub mod fixtures;
mod http_bounds;
mod mail;
mod metadata;
mod moderation;
mod pipeline;
mod privileges;
mod records;
mod relay;
mod secrets;
mod startup;
mod status_writes;
mod store_bounds;
mod traces;
mod withdrawn;
mod worker_limits;
