//! `db-setup`: the one-shot step that migrates every domain's schema as its owner and gives
//! the producer and the workers roles with only the rights they use (see
//! `dbkit::set_up_database`).

use anyhow::Context;

use crate::cli::DatabaseSetupSettings;

/// Sets the database up, waiting for it if it is not up yet.
pub async fn set_up(settings: &DatabaseSetupSettings) -> anyhow::Result<()> {
    let roles = settings.roles();
    let schemas = crate::schemas();
    dbkit::when_database_up("DATABASE_ADMIN_URL", || {
        dbkit::set_up_database(&settings.admin_url, &roles, &schemas, settings.timeout)
    })
    .await
    .context("setting up the database (DATABASE_ADMIN_URL)")
}
