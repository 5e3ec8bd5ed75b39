//! The job machinery: handling, observing, retries, dead letters, publishing, recovery,
//! shutdown, decoupling, delays, metrics.

mod bad_input;
mod dead_letters;
mod delays;
mod handling;
mod metrics;
mod observing;
mod parking;
mod permissions;
mod publishing;
mod quarantine;
mod recovery;
mod retries;
mod shutdown;
mod topology;
mod traces;
