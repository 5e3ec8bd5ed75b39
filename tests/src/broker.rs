//! Real RabbitMQ brokers for tests and benchmarks, started with testcontainers.
//!
//! Most tests share one broker per test process and isolate themselves with a vhost of their
//! own. Tests that hurt the whole node (restart, memory alarm) start a dedicated broker.
//! The image comes from `RABBITMQ_IMAGE` (default `rabbitmq:4-management`).

use std::sync::OnceLock;
use std::time::Duration;

use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::management::Management;

/// The image tests run against unless `RABBITMQ_IMAGE` says otherwise.
pub const DEFAULT_IMAGE: &str = "rabbitmq:4-management";

/// Statistics every 500 ms instead of 5 s, so queue counts in the management API are fresh.
pub(crate) const TEST_CONFIG: &str = "collect_statistics_interval = 500\n";

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    container_id: String,
    amqp_port: u16,
    management: Management,
    /// Owned by dedicated brokers only: dropping it removes the container.
    _container: Option<ContainerAsync<GenericImage>>,
}

/// A vhost of its own on a broker, deleted (queues and all) when dropped, so that a long
/// test run does not pile hundreds of quorum queues onto the shared broker.
#[derive(Debug)]
pub struct Vhost {
    /// The vhost's name.
    pub name: String,
    /// An `amqp://` URL into it.
    pub amqp_url: String,
    /// The broker's management API.
    pub management: Management,
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let (management, name) = (self.management.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be ending: delete from a thread.
        let deleting = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let _ = runtime.block_on(management.delete_vhost(&name));
            }
        });
        let _ = deleting.join();
    }
}

static SHARED: OnceLock<Result<Broker, String>> = OnceLock::new();

impl Broker {
    /// The process-wide broker shared by tests that isolate themselves in vhosts. Started on
    /// first use and removed when the process exits.
    pub fn shared() -> &'static Broker {
        let broker = SHARED.get_or_init(|| {
            // A runtime of its own: the container outlives every test's runtime.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let container = start_container().await?;
                    let mut broker = Broker::from_container(&container).await?;
                    // Never dropped: removed at exit by `remove_shared_broker`.
                    std::mem::forget(container);
                    broker._container = None;
                    Ok(broker)
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the broker start-up thread panicked".into()))
        });
        match broker {
            Ok(broker) => broker,
            Err(error) => panic!("cannot start the shared RabbitMQ: {error}"),
        }
    }

    /// A broker for this test alone, removed when dropped.
    pub async fn dedicated() -> Result<Broker, String> {
        let container = start_container().await?;
        let mut broker = Broker::from_container(&container).await?;
        broker._container = Some(container);
        Ok(broker)
    }

    async fn from_container(container: &ContainerAsync<GenericImage>) -> Result<Self, String> {
        let port = |p: u16| async move {
            container
                .get_host_port_ipv4(ContainerPort::Tcp(p))
                .await
                .map_err(|e| format!("port {p}: {e}"))
        };
        let management = Management::new(format!("http://127.0.0.1:{}", port(15672).await?));
        management.wait_until_up().await?;
        Ok(Self {
            container_id: container.id().to_owned(),
            amqp_port: port(5672).await?,
            management,
            _container: None,
        })
    }

    /// The management API.
    #[must_use]
    pub fn management(&self) -> &Management {
        &self.management
    }

    /// The host port mapped to AMQP.
    #[must_use]
    pub fn amqp_port(&self) -> u16 {
        self.amqp_port
    }

    /// An `amqp://` URL into `vhost`.
    #[must_use]
    pub fn amqp_url(&self, vhost: &str) -> String {
        let vhost = vhost.replace('/', "%2f");
        format!("amqp://guest:guest@127.0.0.1:{}/{vhost}", self.amqp_port)
    }

    /// Creates a fresh vhost, named after `label`, with full rights for `guest`.
    pub async fn vhost(&self, label: &str) -> Result<Vhost, String> {
        let name = format!("{label}-{}", uuid::Uuid::new_v4().simple());
        self.management.create_vhost(&name).await?;
        Ok(Vhost {
            amqp_url: self.amqp_url(&name),
            name,
            management: self.management.clone(),
        })
    }

    /// Runs `rabbitmqctl <args>` in the container.
    pub async fn rabbitmqctl(&self, args: &[&str]) -> Result<String, String> {
        rabbitmqctl(&self.container_id, args).await
    }
}

/// Runs `rabbitmqctl <args>` in `container`.
pub(crate) async fn rabbitmqctl(container: &str, args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new("docker")
        .arg("exec")
        .arg(container)
        .arg("rabbitmqctl")
        .args(args)
        .output()
        .await
        .map_err(|e| format!("docker exec: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "rabbitmqctl {args:?} failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The image named by `RABBITMQ_IMAGE`, as (name, tag).
#[must_use]
pub fn image() -> (String, String) {
    let image = std::env::var("RABBITMQ_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
    match image.rsplit_once(':') {
        Some((name, tag)) => (name.to_owned(), tag.to_owned()),
        None => (image, "latest".to_owned()),
    }
}

async fn start_container() -> Result<ContainerAsync<GenericImage>, String> {
    let (name, tag) = image();
    GenericImage::new(name.clone(), tag.clone())
        .with_exposed_port(ContainerPort::Tcp(5672))
        .with_exposed_port(ContainerPort::Tcp(15672))
        .with_wait_for(WaitFor::message_on_either_std("Server startup complete"))
        .with_copy_to(
            "/etc/rabbitmq/conf.d/90-tests.conf",
            TEST_CONFIG.as_bytes().to_vec(),
        )
        .with_label("jobs-tests", "rabbitmq")
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .map_err(|e| format!("starting {name}:{tag}: {e}"))
}

/// Removes the shared broker when the test process exits (statics are never dropped).
#[allow(unsafe_code)]
#[dtor::dtor(unsafe)]
fn remove_shared_broker() {
    if let Some(Ok(broker)) = SHARED.get() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", "--volumes", &broker.container_id])
            .output();
    }
}

impl Broker {
    /// A broker for this process alone whose AMQP and management ports are published on the
    /// fixed host ports given, so that clients find it again after `docker restart`; removed
    /// when dropped.
    pub async fn dedicated_on_ports(
        amqp_port: u16,
        management_port: u16,
    ) -> Result<Broker, String> {
        let (name, tag) = image();
        let container = GenericImage::new(name.clone(), tag.clone())
            .with_exposed_port(ContainerPort::Tcp(5672))
            .with_exposed_port(ContainerPort::Tcp(15672))
            .with_wait_for(WaitFor::message_on_either_std("Server startup complete"))
            .with_mapped_port(amqp_port, ContainerPort::Tcp(5672))
            .with_mapped_port(management_port, ContainerPort::Tcp(15672))
            .with_copy_to(
                "/etc/rabbitmq/conf.d/90-tests.conf",
                TEST_CONFIG.as_bytes().to_vec(),
            )
            .with_label("jobs-tests", "rabbitmq")
            .with_startup_timeout(Duration::from_secs(120))
            .start()
            .await
            .map_err(|e| {
                format!("starting {name}:{tag} on ports {amqp_port}, {management_port}: {e}")
            })?;
        let mut broker = Broker::from_container(&container).await?;
        broker._container = Some(container);
        Ok(broker)
    }

    /// The container's id, for `docker` commands.
    #[must_use]
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// `docker stop`s the container: the broker shuts down as on SIGTERM; every client loses
    /// its connection and none can connect until [`Broker::start`].
    pub async fn stop(&self) -> Result<(), String> {
        docker(&["stop", &self.container_id]).await
    }

    /// `docker start`s a stopped container (its ports are fixed: see
    /// [`Broker::dedicated_on_ports`]) and waits until the management API answers again.
    pub async fn start(&self) -> Result<(), String> {
        docker(&["start", &self.container_id]).await?;
        self.management.wait_until_up().await
    }

    /// `docker restart`s the container (the broker stops as on SIGTERM, then boots again) and
    /// waits until the management API answers again.
    pub async fn restart(&self) -> Result<(), String> {
        docker(&["restart", &self.container_id]).await?;
        self.management.wait_until_up().await
    }
}

/// Runs `docker <args>`, bounded by two minutes.
pub(crate) async fn docker(args: &[&str]) -> Result<(), String> {
    let what = format!("docker {}", args.first().unwrap_or(&""));
    let running = tokio::process::Command::new("docker").args(args).output();
    let output = tokio::time::timeout(Duration::from_secs(120), running)
        .await
        .map_err(|_| format!("{what} took over 120 s"))?
        .map_err(|e| format!("{what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
