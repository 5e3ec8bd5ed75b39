//! `db-setup`: the one-shot step that migrates the schema as its owner and gives the producer
//! and the workers roles with only the rights they use (see `photos::set_up_database`).

use anyhow::Context;

use crate::cli::DatabaseSetupSettings;

/// Sets the database up, waiting for it if it is not up yet.
pub async fn set_up(settings: &DatabaseSetupSettings) -> anyhow::Result<()> {
    let roles = settings.roles();
    photos::when_database_up("DATABASE_ADMIN_URL", || {
        photos::set_up_database(&settings.admin_url, &roles, settings.timeout)
    })
    .await
    .context("setting up the database (DATABASE_ADMIN_URL)")
}
