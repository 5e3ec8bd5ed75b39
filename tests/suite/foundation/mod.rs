//! The job machinery: handling, observing, retries, dead letters, publishing, recovery,
//! shutdown, decoupling.

mod bad_input;
mod handling;
mod observing;
mod permissions;
mod publishing;
mod recovery;
mod retries;
mod shutdown;
