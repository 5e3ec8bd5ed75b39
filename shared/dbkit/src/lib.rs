//! PostgreSQL as every domain's store uses it: one error type that says whether trying again
//! may help, every call bounded on both sides, one pool whose schema is checked at start,
//! and the one-shot set-up (`producer db-setup`) that migrates each domain's schema as an
//! owner role and gives the apps roles with only the rights they use.
//!
//! A domain brings its [`Schema`] (its migrations and the rights each app needs on its
//! tables); the binaries set up and connect with every domain's.

mod error;
mod job_state;
mod outbox;
mod pool;
mod setup;

pub use self::error::{StoreError, bounded};
pub use self::job_state::{JobRow, JobState, JobStatus, job_statuses, jobs_retrying};
pub use self::outbox::{WriteError, outbox_schema};
pub use self::pool::{Database, DatabaseSettings, when_database_up};
pub use self::setup::{DatabaseRoles, Login, Rights, Schema, check_schema, set_up_database};
