//! Memory stays bounded under concurrent uploads: small files that decode huge, all at once,
//! against the producer running as a process of its own, whose peak RSS `/proc` reports.

use std::process::Stdio;
use std::time::Duration;

use support::{Broker, Postgres, Vhost, wait_until};
use tokio::process::{Child, Command};

use super::fixtures::compressed_png;
use crate::helpers::PATIENCE;

const BUDGET_MIB: u64 = 256;
const MIB: u64 = 1024 * 1024;

/// The real producer binary on a free port, with a vhost, database and storage of its own.
struct ProducerProcess {
    child: Child,
    /// Deleted when dropped: kept as long as the process runs.
    _vhost: Vhost,
    base: String,
    http: reqwest::Client,
    dir: std::path::PathBuf,
}

impl ProducerProcess {
    async fn start(label: &str) -> Self {
        support::logs::capture();
        let vhost = Broker::shared().vhost(label).await.unwrap();
        let database = Postgres::shared().app_database(label).await.unwrap();
        let dir = std::env::temp_dir().join(format!("{label}-{}", uuid::Uuid::new_v4().simple()));
        let port = support::free_port().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_photo-producer"))
            .arg("serve")
            .env("AMQP_URL", &vhost.amqp_url)
            .env("DATABASE_URL", &database.producer_url)
            .env("STORAGE_DIR", dir.join("storage"))
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("DECODE_MEMORY_MIB", BUDGET_MIB.to_string())
            .env("DECODE_WAIT", "2s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let producer = Self {
            child,
            _vhost: vhost,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir,
        };
        wait_until(PATIENCE, "the producer to answer", || async {
            producer.healthy().await
        })
        .await
        .unwrap();
        producer
    }

    async fn healthy(&self) -> bool {
        let health = self.http.get(format!("{}/healthz", self.base)).send().await;
        health.is_ok_and(|r| r.status() == 200)
    }

    /// The process's peak resident memory so far (`VmHWM`), bytes.
    fn peak_rss(&self) -> u64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }
}

impl Drop for ProducerProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn thirty_two_small_pngs_that_decode_huge_at_once_stay_within_the_decode_budget() {
    let producer = ProducerProcess::start("decode-budget").await;
    // 7000 x 7000 of one colour: about 150 KiB of PNG, 147 MB once decoded.
    let bomb = compressed_png(7000);
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    let before = producer.peak_rss();

    let uploads: Vec<_> = (0..32)
        .map(|i| {
            let request = producer
                .http
                .post(format!("{}/users/u{i}/avatar", producer.base))
                .header("content-type", "image/png")
                .body(bomb.clone())
                .send();
            tokio::spawn(request)
        })
        .collect();
    // The app keeps answering while they are decoded.
    let health = tokio::time::timeout(Duration::from_secs(5), producer.healthy()).await;
    assert_eq!(
        health,
        Ok(true),
        "/healthz did not answer during the uploads"
    );

    let (mut accepted, mut refused) = (0, 0);
    for upload in uploads {
        let response = upload.await.unwrap().unwrap();
        match response.status().as_u16() {
            202 => accepted += 1,
            503 => {
                let retry_after = response.headers().get("retry-after").cloned();
                let body: serde_json::Value = response.json().await.unwrap();
                assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                assert!(
                    body["error"].as_str().unwrap().contains("try again"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("upload answered {other}: {:?}", response.text().await),
        }
    }
    let grown = producer.peak_rss().saturating_sub(before);
    tracing::info!(
        accepted,
        refused,
        grown_mib = grown / MIB,
        budget_mib = BUDGET_MIB,
        "uploads answered; the producer's peak RSS grew"
    );
    assert!(accepted >= 1, "no upload was accepted");
    // The budget bounds the decoded pixels; the rest (bodies, buffers) is small beside it.
    assert!(
        grown <= (BUDGET_MIB + 64) * MIB,
        "peak RSS grew {} MiB, over the {BUDGET_MIB} MiB budget",
        grown / MIB
    );
}
