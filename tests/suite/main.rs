//! Integration tests against a real RabbitMQ (testcontainers): one binary, a module per concern.
//! Each test works in a vhost of its own, so they run in parallel and rerun cleanly.

// A failed expectation in a test should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod app;
mod cluster;
mod foundation;
mod helpers;
mod orders;
mod outbox;
mod photos;
