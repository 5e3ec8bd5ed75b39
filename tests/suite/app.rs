//! The app under test, both domains: the real producer (HTTP on a free port), real workers,
//! and a fresh vhost, database and storage folder per test.

use std::path::PathBuf;
use std::time::Duration;

use dbkit::DatabaseSettings;
use photos::{ImageState, ImageStatus, JobState, PhotoSettings};
use rabbitmq_jobs::outbox::OutboxSettings;
use rabbitmq_jobs::{AmqpSettings, Publisher, Topology, Worker};
use support::logs::Logs;
use support::{AppDatabase, Broker, Postgres, Vhost, wait_until};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::{PATIENCE, RunningWorker, fast_publishing};

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub vhost: Vhost,
    pub amqp: AmqpSettings,
    pub database: AppDatabase,
    pub handlers: worker::HandlerSettings,
    pub publisher: Publisher,
    pub dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Knobs a test may turn before the app starts.
pub struct Options {
    pub max_upload_bytes: u64,
    pub blocklist: Option<String>,
    pub body_read_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Where the workers send warehouse notices (nothing listens by default).
    pub warehouse_url: String,
    /// Longest one warehouse call may take.
    pub warehouse_timeout: Duration,
    /// The outbox's limits and pace.
    pub outbox: OutboxSettings,
    /// Whether the producer relays its outbox (off: jobs stay in it, as while the broker is
    /// away).
    pub relay: bool,
    /// Whether the admin API and dashboard are on, with [`ADMIN_TOKEN`].
    pub admin: bool,
}

/// The admin token of apps started with `admin: true`.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl Default for Options {
    fn default() -> Self {
        Self {
            max_upload_bytes: 20 * 1024 * 1024,
            blocklist: None,
            body_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            warehouse_url: "http://127.0.0.1:1".into(),
            warehouse_timeout: Duration::from_secs(5),
            outbox: OutboxSettings::default(),
            relay: true,
            admin: false,
        }
    }
}

pub async fn spawn_app(label: &str, options: Options) -> App {
    spawn_app_on(Broker::shared(), label, options).await
}

/// [`spawn_app`] in a vhost on `broker`.
pub async fn spawn_app_on(broker: &Broker, label: &str, options: Options) -> App {
    support::logs::capture();
    let vhost = broker.vhost(label).await.unwrap();
    let database = Postgres::shared().app_database(label).await.unwrap();
    let dir = std::env::temp_dir().join(format!("{label}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let blocklist_file = options.blocklist.map(|text| {
        let path = dir.join("blocklist.txt");
        std::fs::write(&path, text).unwrap();
        path
    });
    let amqp = AmqpSettings::from_url(&vhost.amqp_url).unwrap();
    let database_settings = |url: &str| DatabaseSettings {
        url: url.to_owned(),
        max_connections: 5,
        statement_timeout: Duration::from_secs(5),
    };
    let photos = PhotoSettings {
        storage_dir: dir.join("storage"),
        max_image_pixels: 50_000_000,
        decode_memory_mib: 256,
    };
    let pipeline = worker::PipelineSettings {
        photos: photos.clone(),
        thumbnail_sizes: vec![64, 256, 512],
        cpu_threads: None,
        blocklist_file,
        blocklist_max_distance: 8,
        mail_from: "Photos <no-reply@photos.test>".into(),
        user_email_domain: "users.test".into(),
    };
    let handlers = worker::HandlerSettings {
        database: database_settings(&database.worker_url),
        mail: worker::MailSettings {
            smtp_url: None,
            outbox_dir: dir.join("outbox"),
            public_base_url: "http://photos.test".into(),
        },
        pipeline,
        orders: worker::OrderSettings {
            warehouse: orders::WarehouseSettings {
                warehouse_url: options.warehouse_url,
                warehouse_timeout: options.warehouse_timeout,
            },
            order_mail_from: "Store <orders@store.test>".into(),
        },
    };
    let topology = Topology::new(producer::catalog().unwrap().kinds()).unwrap();
    let publisher = Publisher::connect(&amqp, fast_publishing(), topology, label)
        .await
        .unwrap();
    let admin = options.admin.then(|| admin(broker, &vhost, &amqp));
    let serve = producer::ServeSettings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        max_upload_bytes: options.max_upload_bytes,
        body_read_timeout: options.body_read_timeout,
        decode_wait: Duration::from_secs(2),
        shutdown_timeout: options.shutdown_timeout,
        job_delivery: producer::JobDelivery::Outbox,
        outbox: options.outbox,
        database: database_settings(&database.producer_url),
        photos,
    };
    let serving = producer::prepare(publisher.clone(), &serve, admin)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(serve.http_addr)
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stop) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop.await;
    };
    let server = if options.relay {
        tokio::spawn(producer::serve_on(
            serving,
            listener,
            serve.shutdown_timeout,
            stopped,
        ))
    } else {
        let serving =
            producer::web::serve(listener, serving.state, stopped, serve.shutdown_timeout);
        tokio::spawn(async move { Ok(serving.await?) })
    };
    App {
        base,
        http: reqwest::Client::new(),
        vhost,
        amqp,
        database,
        handlers,
        publisher,
        dir,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// The admin API over the test's vhost, as the guest administrator, with the broker's
/// management API for queue depths and rates.
fn admin(broker: &Broker, vhost: &Vhost, amqp: &AmqpSettings) -> producer::web::Admin {
    let dead = producer::dead_letters(amqp, fast_publishing()).unwrap();
    let management = broker
        .management()
        .base()
        .replacen("http://", "http://guest:guest@", 1);
    let stats = producer::web::BrokerStats::new(&management, &vhost.name).unwrap();
    producer::web::Admin::new(ADMIN_TOKEN, dead, Some(stats))
}

impl App {
    /// A worker of every domain, as `worker` runs it, in a runtime of its own.
    pub fn start_worker(&self) -> RunningWorker {
        self.start_worker_logged(None)
    }

    /// As [`App::start_worker`]; with `logs`, its log lines go there.
    pub fn start_worker_logged(&self, logs: Option<Logs>) -> RunningWorker {
        let (amqp, handlers) = (self.amqp.clone(), self.handlers.clone());
        let settings = rabbitmq_jobs::WorkerSettings {
            name: format!("{}-worker", self.vhost.name),
            ..rabbitmq_jobs::WorkerSettings::default()
        };
        let make = move || async move {
            let registry = worker::registry(&handlers, &amqp, fast_publishing())
                .await
                .unwrap();
            Worker::new(amqp, settings, fast_publishing(), registry).unwrap()
        };
        RunningWorker::spawn_logged(make, logs)
    }

    /// Signals the server to shut down; its task ends when `serve` returns.
    pub fn stop_serving(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take().expect("the server was stopped already")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Uploads `bytes` as the `image` field of a form, with a client file name.
    pub async fn upload_form(
        &self,
        user: &str,
        bytes: Vec<u8>,
        file_name: &str,
    ) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned());
        let form = reqwest::multipart::Form::new().part("image", part);
        self.http
            .post(self.url(&format!("/users/{user}/avatar")))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` as the raw body with `content_type`.
    pub async fn upload_raw(
        &self,
        user: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/users/{user}/avatar")))
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Uploads and expects 202; returns the image id.
    pub async fn accepted_upload(&self, user: &str, bytes: Vec<u8>) -> Uuid {
        self.accepted_upload_named(user, bytes, "me.jpg").await
    }

    /// Uploads with a client file name and expects 202; returns the image id.
    pub async fn accepted_upload_named(&self, user: &str, bytes: Vec<u8>, file_name: &str) -> Uuid {
        let response = self.upload_form(user, bytes, file_name).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status_url"], location.as_str());
        body["image_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn image(&self, image_id: Uuid) -> ImageStatus {
        let response = self
            .http
            .get(self.url(&format!("/images/{image_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until the image reaches `state` and its email job is done.
    pub async fn wait_for(&self, image_id: Uuid, state: ImageState) -> ImageStatus {
        let what = format!("image {image_id} to be {state:?} with its mail sent");
        let waited = wait_until(PATIENCE, &what, || async {
            let status = self.image(image_id).await;
            status.state == state
                && status
                    .jobs
                    .get("send_email")
                    .is_some_and(|j| j.state == JobState::Done)
        })
        .await;
        let status = self.image(image_id).await;
        if let Err(error) = waited {
            panic!("{error}; last status: {status:#?}");
        }
        status
    }

    pub async fn user(&self, user: &str) -> serde_json::Value {
        let response = self
            .http
            .get(self.url(&format!("/users/{user}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.bytes().await.unwrap().to_vec()
    }

    /// The mails in the outbox.
    pub fn outbox(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.handlers.mail.outbox_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect()
    }

    /// Acts out a worker that died after sending an upload's mail and before recording it:
    /// the mail is left `sending`, and its job is delivered again.
    pub async fn lose_mail_record(&self, image_id: Uuid, user: &str) {
        let db = sqlx::PgPool::connect(&self.database.admin_url)
            .await
            .unwrap();
        sqlx::query("UPDATE sent_emails SET state = 'sending' WHERE image_id = $1")
            .bind(image_id)
            .execute(&db)
            .await
            .unwrap();
        let email = photos::EmailJob {
            image_id,
            user_id: user.into(),
        };
        self.publisher.publish(&email).await.unwrap();
    }

    /// The app still answers.
    pub async fn assert_alive(&self) {
        let response = self.http.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
