//! Prometheus for the binaries. The job library records through the `metrics` facade only;
//! this crate installs the process's one recorder, renders it for `GET /metrics`, measures
//! HTTP requests, and serves `/metrics` on a listener of its own for a binary without a
//! web app (the worker).

mod http;
mod recorder;
mod server;

pub use http::track_requests;
pub use recorder::{CONTENT_TYPE, install, metrics_route};
pub use server::{serve, serve_with_grace};
