//! The database's one-shot set-up (`producer db-setup`): every domain's schema is migrated as
//! an owner role nobody logs in as, and the producer and the workers get login roles with
//! only the rights their statements use. The apps never migrate; they check at start that
//! the schema has every migration they were built with.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::{StoreError, bounded};

/// Rights on a domain's tables: `(table, privileges)` as `GRANT` takes them, e.g.
/// `("images", "SELECT, UPDATE (thumbnails)")`.
pub type Rights = &'static [(&'static str, &'static str)];

/// A domain's part of the database: its migrations (each domain with a history table of its
/// own, so no domain sees another's versions as missing) and what each app may do with its
/// tables. Reading the history table is granted with it.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The domain's name, for messages.
    pub name: &'static str,
    /// Its migrations, built in.
    pub migrator: &'static Migrator,
    /// What the producer's statements use.
    pub producer: Rights,
    /// What the workers' statements use.
    pub worker: Rights,
}

/// A role the apps log in as.
#[derive(Clone)]
pub struct Login {
    /// The role's name.
    pub role: String,
    /// Its password (set again at every set-up, so rotating it is a re-run).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The database's roles: who owns the schema, and who each app logs in as.
#[derive(Debug, Clone)]
pub struct DatabaseRoles {
    /// Owns every table; cannot log in. Migrations run as it.
    pub owner: String,
    /// The web app's role.
    pub producer: Login,
    /// The workers' role.
    pub worker: Login,
}

/// Sets the database at `admin_url` up for `schemas`: creates or updates the roles, hands
/// every table of `public` to the owner, migrates each schema as the owner, and grants each
/// app its rights (only those: what a previous set-up granted and the code no longer uses is
/// taken back). `admin_url` is a superuser's (the PostgreSQL image's `POSTGRES_USER`), or a
/// role with `CREATEROLE` that owns the database. Connecting, then the whole set-up, are
/// each bounded by `timeout`. Running it again is harmless.
#[tracing::instrument(skip_all, fields(owner = %roles.owner))]
pub async fn set_up_database(
    admin_url: &str,
    roles: &DatabaseRoles,
    schemas: &[Schema],
    timeout: Duration,
) -> Result<(), StoreError> {
    let mut admin = bounded(timeout, "connecting", PgConnection::connect(admin_url)).await?;
    let steps = async {
        create_roles(&mut admin, roles).await?;
        hand_over_tables(&mut admin, &roles.owner).await?;
        for schema in schemas {
            migrate_as(admin_url, &roles.owner, schema.migrator).await?;
        }
        grant_rights(&mut admin, roles, schemas).await
    };
    bounded(timeout, "setting the database up", steps).await?;
    tracing::info!("database set up: schema migrated, app roles granted");
    Ok(())
}

/// Runs the pending migrations as `owner`, on a connection of their own that starts with
/// that role (a pool of one: sqlx's migrator takes a pool or a connection, and only a pool
/// keeps the set-up's future `Send`).
async fn migrate_as(admin_url: &str, owner: &str, migrator: &Migrator) -> Result<(), StoreError> {
    let options = PgConnectOptions::from_str(admin_url)?.options([("role", owner)]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let migrated = migrator.run(&pool).await;
    pool.close().await;
    Ok(migrated?)
}

/// Checks that `schema` has every migration this build knows, so an app started before
/// `db-setup` ran says so instead of failing on its first statement.
pub async fn check_schema(pool: &PgPool, schema: &Schema) -> Result<(), StoreError> {
    let query = format!(
        "SELECT version FROM {} WHERE success",
        schema.migrator.table_name
    );
    let applied: Vec<i64> = match sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_all(pool)
        .await
    {
        Ok(versions) => versions,
        // undefined_table: nothing was ever migrated.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    let missing: Vec<i64> = schema
        .migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::SchemaBehind {
            schema: schema.name,
            missing,
        })
    }
}

async fn create_roles(admin: &mut PgConnection, roles: &DatabaseRoles) -> Result<(), StoreError> {
    if !role_exists(admin, &roles.owner).await? {
        execute_formatted(admin, "CREATE ROLE %I NOLOGIN", &[&roles.owner]).await?;
    }
    // Handing tables to the owner and acting as it need membership (implied for a superuser).
    execute_formatted(admin, "GRANT %I TO CURRENT_USER", &[&roles.owner]).await?;
    for login in [&roles.producer, &roles.worker] {
        let verb = if role_exists(admin, &login.role).await? {
            "ALTER"
        } else {
            "CREATE"
        };
        let statement =
            format!("{verb} ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L");
        execute_formatted(admin, &statement, &[&login.role, &login.password]).await?;
    }
    Ok(())
}

async fn role_exists(admin: &mut PgConnection, role: &str) -> Result<bool, StoreError> {
    let query = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)";
    Ok(sqlx::query_scalar(query)
        .bind(role)
        .fetch_one(admin)
        .await?)
}

/// Gives the owner the schema and every table in it, including those an earlier version
/// created when the apps migrated as the superuser.
async fn hand_over_tables(admin: &mut PgConnection, owner: &str) -> Result<(), StoreError> {
    execute_formatted(
        admin,
        "GRANT USAGE, CREATE ON SCHEMA public TO %I",
        &[owner],
    )
    .await?;
    let query =
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tableowner <> $1";
    let tables: Vec<String> = sqlx::query_scalar(query)
        .bind(owner)
        .fetch_all(&mut *admin)
        .await?;
    for table in &tables {
        let alter = "ALTER TABLE public.%I OWNER TO %I";
        execute_formatted(admin, alter, &[table, owner]).await?;
    }
    Ok(())
}

/// Replaces the apps' rights with exactly those the schemas name, in one transaction.
async fn grant_rights(
    admin: &mut PgConnection,
    roles: &DatabaseRoles,
    schemas: &[Schema],
) -> Result<(), StoreError> {
    let mut tx = admin.begin().await?;
    let apps = [roles.producer.role.as_str(), roles.worker.role.as_str()];
    // Nobody else may connect to or create in this database; the apps may only connect.
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *tx)
        .await?;
    execute_formatted(
        &mut tx,
        "REVOKE ALL ON DATABASE %I FROM PUBLIC",
        &[&database],
    )
    .await?;
    execute_formatted(&mut tx, "REVOKE CREATE ON SCHEMA public FROM PUBLIC", &[]).await?;
    for app in apps {
        let args = [database.as_str(), app];
        execute_formatted(&mut tx, "REVOKE ALL ON DATABASE %I FROM %I", &args).await?;
        execute_formatted(&mut tx, "GRANT CONNECT ON DATABASE %I TO %I", &args).await?;
        let schema = "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I";
        execute_formatted(&mut tx, schema, &[app]).await?;
        execute_formatted(&mut tx, "GRANT USAGE ON SCHEMA public TO %I", &[app]).await?;
    }
    for schema in schemas {
        let history = [(schema.migrator.table_name.as_ref(), "SELECT")];
        for (app, rights) in [(apps[0], schema.producer), (apps[1], schema.worker)] {
            for (table, privileges) in rights.iter().copied().chain(history) {
                let grant = format!("GRANT {privileges} ON public.%I TO %I");
                execute_formatted(&mut tx, &grant, &[table, app]).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Runs `template` with its `%I` (identifier) and `%L` (literal) placeholders filled by the
/// server's own `format()`, so no name or password is ever quoted by hand.
async fn execute_formatted(
    connection: &mut PgConnection,
    template: &str,
    args: &[&str],
) -> Result<(), StoreError> {
    let statement: String = sqlx::query_scalar("SELECT format($1, VARIADIC $2::text[])")
        .bind(template)
        .bind(args)
        .fetch_one(&mut *connection)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(connection)
        .await?;
    Ok(())
}
