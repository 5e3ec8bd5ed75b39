//! A real PostgreSQL for tests, started with testcontainers: one server per test process,
//! a fresh database per test. The image comes from `POSTGRES_IMAGE` (default `postgres:15`).

use std::sync::OnceLock;
use std::time::Duration;

use dbkit::{DatabaseRoles, Login, set_up_database};
use sqlx::Connection;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use crate::wait::wait_until;

/// The image tests run against unless `POSTGRES_IMAGE` says otherwise.
pub const DEFAULT_IMAGE: &str = "postgres:15";

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    container_id: String,
    port: u16,
}

static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();

impl Postgres {
    /// The process-wide server, started on first use and removed when the process exits.
    pub fn shared() -> &'static Postgres {
        let server = SHARED.get_or_init(|| {
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(start())
            })
            .join()
            .unwrap_or_else(|_| Err("the PostgreSQL start-up thread panicked".into()))
        });
        match server {
            Ok(server) => server,
            Err(error) => panic!("cannot start the shared PostgreSQL: {error}"),
        }
    }

    /// The container's id, for `docker` commands.
    #[must_use]
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The host port mapped to PostgreSQL's.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    fn url(&self, database: &str) -> String {
        self.url_as("postgres", "postgres", database)
    }

    fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Creates a fresh database as `db-setup` sets one up (every domain's schema), with
    /// roles of its own (roles are the server's, shared by every test's database).
    pub async fn app_database(&self, label: &str) -> Result<AppDatabase, String> {
        let name = self.create_database(label).await?;
        let admin_url = self.url(&name);
        let roles = test_roles(&unique_prefix("r"));
        set_up_database(
            &admin_url,
            &roles,
            &producer::schemas(),
            Duration::from_secs(60),
        )
        .await
        .map_err(|e| format!("setting up database {name}: {e}"))?;
        let url_of = |login: &Login| self.url_as(&login.role, &login.password, &name);
        Ok(AppDatabase {
            producer_url: url_of(&roles.producer),
            worker_url: url_of(&roles.worker),
            admin_url,
            roles,
        })
    }

    /// Creates a fresh, empty database named after `label` and returns its URL (as the
    /// superuser).
    pub async fn database(&self, label: &str) -> Result<String, String> {
        let name = self.create_database(label).await?;
        Ok(self.url(&name))
    }

    async fn create_database(&self, label: &str) -> Result<String, String> {
        let name = format!(
            "{}_{}",
            label.replace('-', "_"),
            uuid::Uuid::new_v4().simple()
        );
        let admin = self.url("postgres");
        // The server may still be finishing its first start: wait until it accepts us.
        wait_until(
            Duration::from_secs(60),
            "PostgreSQL to accept connections",
            || async { sqlx::PgConnection::connect(&admin).await.is_ok() },
        )
        .await?;
        let mut connection = sqlx::PgConnection::connect(&admin)
            .await
            .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
        let create = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut connection)
            .await
            .map_err(|e| format!("creating database {name}: {e}"))?;
        Ok(name)
    }
}

/// A test's database, set up as `db-setup` does, and how each party connects to it.
#[derive(Debug, Clone)]
pub struct AppDatabase {
    /// As the superuser: for a test's own reads and writes.
    pub admin_url: String,
    /// As the producer's role.
    pub producer_url: String,
    /// As the workers' role.
    pub worker_url: String,
    /// The roles it was set up with.
    pub roles: DatabaseRoles,
}

async fn start() -> Result<Postgres, String> {
    let image = std::env::var("POSTGRES_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
    let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
    let container = GenericImage::new(name, tag)
        .with_exposed_port(ContainerPort::Tcp(5432))
        .with_wait_for(WaitFor::message_on_either_std(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_PASSWORD", "postgres")
        .with_label("jobs-tests", "postgres")
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .map_err(|e| format!("starting {image}: {e}"))?;
    let port = container
        .get_host_port_ipv4(ContainerPort::Tcp(5432))
        .await
        .map_err(|e| e.to_string())?;
    let server = Postgres {
        container_id: container.id().to_owned(),
        port,
    };
    // Never dropped: removed at exit by `remove_shared_postgres`.
    std::mem::forget(container);
    Ok(server)
}

/// Removes the shared server when the test process exits (statics are never dropped).
#[allow(unsafe_code)]
#[dtor::dtor(unsafe)]
fn remove_shared_postgres() {
    if let Some(Ok(server)) = SHARED.get() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", "--volumes", &server.container_id])
            .output();
    }
}

/// A prefix no other test's roles have (roles are the server's, not a database's): `tag`
/// followed by 12 hex digits.
pub fn unique_prefix(tag: &str) -> String {
    format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The roles `db-setup` creates, named `{prefix}_owner`, `{prefix}_producer` and
/// `{prefix}_worker`, with fixed test passwords.
pub fn test_roles(prefix: &str) -> DatabaseRoles {
    let login = |app: &str| Login {
        role: format!("{prefix}_{app}"),
        password: format!("{app}-test-password"),
    };
    DatabaseRoles {
        owner: format!("{prefix}_owner"),
        producer: login("producer"),
        worker: login("worker"),
    }
}
