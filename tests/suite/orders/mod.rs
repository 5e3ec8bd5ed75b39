//! The store's order flow end to end, through the real HTTP API, RabbitMQ, PostgreSQL and a
//! warehouse over HTTP (the project's stand-in, or a test's own that misbehaves).

mod checkout;
mod flow;
mod redelivery;
pub(crate) mod shop;
mod warehouse;
