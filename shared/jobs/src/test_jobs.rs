//! Job types for the library's unit tests.

use serde::{Deserialize, Serialize};

use crate::job::Job;

/// A job at version 3.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ping {
    pub(crate) n: u32,
}

impl Job for Ping {
    const KIND: &'static str = "ping";
    const VERSION: u32 = 3;
}

/// A second kind.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pong {
    pub(crate) n: u32,
}

impl Job for Pong {
    const KIND: &'static str = "pong";
    const VERSION: u32 = 1;
}
