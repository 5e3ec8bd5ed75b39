//! The job machinery: handling, retries, dead letters, publishing, recovery, shutdown, decoupling.

mod bad_input;
mod handling;
mod permissions;
mod publishing;
mod recovery;
mod retries;
mod shutdown;
