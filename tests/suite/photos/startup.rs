//! Starting before the services one depends on: a worker whose PostgreSQL is not up (or not
//! set up) yet waits for it (logging each failed attempt) instead of exiting, and the producer serves
//! with RabbitMQ down, says so on `/readyz`, takes uploads, and publishes their jobs once the
//! broker is back.

use std::net::SocketAddr;
use std::time::Duration;

use dbkit::{DatabaseSettings, set_up_database};
use photos::PhotoSettings;
use rabbitmq_jobs::{AmqpSettings, PublisherSettings};
use support::{Broker, Postgres, free_port, test_roles, wait_until};
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::oneshot;

use super::fixtures::{jpeg, photo};
use super::relay::{Mode, Relay, port_of};
use crate::helpers::PATIENCE;

/// A PostgreSQL server started now on host port `port`.
async fn postgres_on(port: u16) -> ContainerAsync<GenericImage> {
    let image = std::env::var("POSTGRES_IMAGE")
        .unwrap_or_else(|_| support::postgres::DEFAULT_IMAGE.to_owned());
    let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
    GenericImage::new(name, tag)
        .with_exposed_port(ContainerPort::Tcp(5432))
        .with_wait_for(WaitFor::message_on_either_std(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_PASSWORD", "postgres")
        .with_label("jobs-tests", "postgres-late")
        .with_mapped_port(port, ContainerPort::Tcp(5432))
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap()
}

fn photo_settings(dir: &std::path::Path) -> PhotoSettings {
    PhotoSettings {
        storage_dir: dir.join("storage"),
        max_image_pixels: 50_000_000,
        decode_memory_mib: 256,
    }
}

fn database_settings(url: String) -> DatabaseSettings {
    DatabaseSettings {
        url,
        max_connections: 2,
        statement_timeout: Duration::from_secs(5),
    }
}

fn handler_settings(database_url: String, dir: &std::path::Path) -> worker::HandlerSettings {
    worker::HandlerSettings {
        database: database_settings(database_url),
        mail: worker::MailSettings {
            smtp_url: None,
            outbox_dir: dir.join("outbox"),
            public_base_url: "http://photos.test".into(),
        },
        pipeline: worker::PipelineSettings {
            photos: photo_settings(dir),
            thumbnail_sizes: vec![64],
            cpu_threads: None,
            blocklist_file: None,
            blocklist_max_distance: 8,
            mail_from: "Photos <no-reply@photos.test>".into(),
            user_email_domain: "users.test".into(),
        },
        orders: worker::OrderSettings {
            warehouse: orders::WarehouseSettings {
                warehouse_url: "http://127.0.0.1:1".into(),
                warehouse_timeout: Duration::from_secs(5),
            },
            order_mail_from: "Store <orders@store.test>".into(),
        },
    }
}

/// A broker address nothing listens on: the handlers' publisher connects on first use, so
/// none is needed to start.
fn no_broker() -> AmqpSettings {
    AmqpSettings::from_url("amqp://guest:guest@127.0.0.1:1/%2f").unwrap()
}

#[tokio::test]
async fn a_worker_whose_database_is_not_up_yet_waits_for_it_and_then_starts() {
    let port = free_port().unwrap();
    let dir = std::env::temp_dir().join(format!("late-db-{}", uuid::Uuid::new_v4().simple()));
    let admin_url = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
    let (settings, amqp) = (handler_settings(admin_url.clone(), &dir), no_broker());
    let logs = support::logs::Logs::default();
    let _capturing = logs.capture();

    // The worker starts first; the database a moment later, and then its set-up, as in a
    // stack coming up (the worker logs in as the superuser here: there are no app roles
    // before the set-up).
    let starting = tokio::time::timeout(
        PATIENCE,
        worker::registry(&settings, &amqp, PublisherSettings::default()),
    );
    let database = async {
        let container = postgres_on(port).await;
        let roles = test_roles("photos");
        set_up_database(&admin_url, &roles, &producer::schemas(), PATIENCE)
            .await
            .unwrap();
        container
    };
    let (started, _database) = tokio::join!(starting, database);

    let registry = started.expect("the worker was still starting").unwrap();
    assert!(
        registry.kinds().any(|kind| kind == "process_thumbnails"),
        "the worker started without the photo kinds"
    );
    let retries = logs.lines_with("PostgreSQL is not ready yet");
    assert!(retries >= 1, "no failed attempt was logged");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_worker_waiting_for_its_database_stops_at_once_when_told_to() {
    let dir = std::env::temp_dir().join(format!("stop-wait-{}", uuid::Uuid::new_v4().simple()));
    let url = format!(
        "postgres://postgres:postgres@127.0.0.1:{}/none",
        free_port().unwrap()
    );
    let cli = worker::Cli {
        kinds: Vec::new(),
        amqp: no_broker(),
        worker: rabbitmq_jobs::WorkerSettings::default(),
        publishing: PublisherSettings::default(),
        handlers: handler_settings(url, &dir),
        metrics_addr: worker::MetricsAddr(None),
    };
    let logs = support::logs::Logs::default();
    let _capturing = logs.capture();
    let (stop, stopped) = oneshot::channel::<()>();

    let running = tokio::time::timeout(
        PATIENCE,
        worker::run(cli, async move {
            let _ = stopped.await;
        }),
    );
    let stopping = async {
        let waiting = || async { logs.lines_with("PostgreSQL is not ready yet") >= 2 };
        wait_until(PATIENCE, "the worker to wait for its database", waiting)
            .await
            .unwrap();
        stop.send(()).unwrap();
        tokio::time::Instant::now()
    };
    let (result, asked) = tokio::join!(running, stopping);

    result.expect("the worker did not stop").unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// `producer serve` on `http_addr`.
fn serve_cli(
    http_addr: SocketAddr,
    amqp: AmqpSettings,
    database_url: String,
    dir: &std::path::Path,
) -> producer::Cli {
    let serve = producer::ServeSettings {
        http_addr,
        max_upload_bytes: 20 * 1024 * 1024,
        body_read_timeout: Duration::from_secs(30),
        decode_wait: Duration::from_secs(2),
        shutdown_timeout: Duration::from_secs(5),
        job_delivery: producer::JobDelivery::Outbox,
        outbox: rabbitmq_jobs::outbox::OutboxSettings::default(),
        database: database_settings(database_url),
        photos: photo_settings(dir),
    };
    producer::Cli {
        admin: producer::AdminSettings::default(),
        command: producer::Command::Serve(serve),
        amqp,
        // An upload gives up on the broker after this.
        publishing: PublisherSettings {
            publish_timeout: Duration::from_secs(2),
            ..PublisherSettings::default()
        },
    }
}

#[tokio::test]
async fn the_producer_serves_with_rabbitmq_down_takes_uploads_and_relays_their_jobs_once_it_is_back()
 {
    support::logs::capture();
    let vhost = Broker::shared().vhost("late-broker").await.unwrap();
    let relay = Relay::start(port_of(&vhost.amqp_url), Mode::Refuse).await;
    let database_url = Postgres::shared()
        .app_database("late_broker")
        .await
        .unwrap()
        .producer_url;
    let dir = std::env::temp_dir().join(format!("late-mq-{}", uuid::Uuid::new_v4().simple()));
    let http_addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let amqp = AmqpSettings::from_url(&relay.url_through(&vhost.amqp_url)).unwrap();
    let cli = serve_cli(http_addr, amqp, database_url, &dir);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(producer::run(cli, async move {
        let _ = stopped.await;
    }));
    let (http, base) = (reqwest::Client::new(), format!("http://{http_addr}"));
    wait_until(PATIENCE, "the producer to serve", || async {
        assert!(!running.is_finished(), "the producer exited");
        http.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await
    .unwrap();

    // Ready to take work; the broker's absence is reported, not failed on.
    let ready = get_json(&http, &format!("{base}/readyz")).await;
    assert!(
        ready["broker"].as_str().unwrap().contains("unreachable"),
        "{ready}"
    );
    let upload = http
        .post(format!("{base}/users/lena/avatar"))
        .header("content-type", "image/jpeg")
        .body(jpeg(&photo(200, 200, 9)))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 202);
    let accepted: serde_json::Value = upload.json().await.unwrap();
    let status_url = accepted["status_url"].as_str().unwrap();
    let status = get_json(&http, &format!("{base}{status_url}")).await;
    for kind in photos::UPLOAD_KINDS {
        assert_eq!(status["jobs"][kind]["state"], "queued", "{status}");
    }

    relay.set(Mode::Forward);
    for kind in photos::UPLOAD_KINDS {
        let queue = rabbitmq_jobs::work_queue(kind);
        wait_until(
            PATIENCE,
            "the relay to publish the upload's job",
            || async {
                crate::helpers::messages_ready_if_declared(&vhost.amqp_url, &queue).await == Some(1)
            },
        )
        .await
        .unwrap();
    }

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
