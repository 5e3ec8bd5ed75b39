//! What the transactional outbox costs: the upload's response time with the outbox (as
//! compose.yaml ships it) against publishing before answering (`JOB_DELIVERY=direct`, the
//! way uploads worked before), same producer, images, rate and worker; and the relay's
//! throughput against the same publisher publishing the same jobs directly.

use std::time::{Duration, Instant};

use photos::EmailJob;
use rabbitmq_jobs::outbox::{Outbox, OutboxSettings, Relay};
use rabbitmq_jobs::{AmqpSettings, Job, Publisher, PublisherSettings, Topology};
use support::{Broker, Postgres, wait_until};

use crate::orders::paced;
use crate::report::{Section, p50_p99_ratio, quantile};
use crate::spike::stack::{self, JOBS_PER_UPLOAD};

/// Uploads at `rate` with each delivery, in the order direct, outbox, outbox, direct (so
/// that a drift of the machine over the run weighs on both alike); response times pooled
/// per delivery.
pub async fn response(
    bin: &std::path::Path,
    broker: &Broker,
    images: &[Vec<u8>],
    count: usize,
    rate: f64,
    section: &mut Section,
) {
    let (mut direct, mut outbox) = (Vec::new(), Vec::new());
    let mut lost = 0;
    for delivery in ["direct", "outbox", "outbox", "direct"] {
        let stack = stack::start_with(bin, broker, 1, &[("JOB_DELIVERY", delivery)]).await;
        stack.wait_for_consumers(1).await;
        let times = uploads(&stack.base, images, count, rate).await;
        let all = i64::try_from(times.len()).unwrap_or(i64::MAX) * JOBS_PER_UPLOAD;
        let drained = wait_until(Duration::from_secs(900), "the uploads' jobs", || async {
            stack.jobs_done().await >= all
        })
        .await;
        lost += all - stack.jobs_done().await;
        if drained.is_err() {
            eprintln!("   {delivery}: TIMED OUT draining the uploads' jobs");
        }
        if delivery == "direct" {
            &mut direct
        } else {
            &mut outbox
        }
        .extend(times);
    }
    direct.sort_by(f64::total_cmp);
    outbox.sort_by(f64::total_cmp);
    let note = format!("{count} uploads (640×480) at {rate:.0}/s, twice each, 1 worker");
    let row = |times: &[f64]| {
        format!(
            "{:.1} / {:.1} ms ({} accepted)",
            quantile(times, 0.5),
            quantile(times, 0.99),
            times.len()
        )
    };
    section.add(
        "upload response p50 / p99, before: published directly",
        row(&direct),
        &note,
    );
    section.add(
        "upload response p50 / p99, after: through the outbox",
        row(&outbox),
        &note,
    );
    section.add(
        "outbox / direct, p50 and p99",
        p50_p99_ratio(&outbox, &direct),
        "target: at most 1 (the response must not grow)",
    );
    section.add(
        "lost",
        format!("{lost} jobs"),
        "accepted uploads' jobs not done, all four runs",
    );
}

async fn uploads(base: &str, images: &[Vec<u8>], count: usize, rate: f64) -> Vec<f64> {
    let http = reqwest::Client::new();
    let times = paced(count, rate, |n| {
        [http
            .post(format!("{base}/users/bench{n}/avatar"))
            .header("content-type", "image/jpeg")
            .body(images[n % images.len()].clone())]
    })
    .await;
    times.into_iter().next().unwrap_or_default()
}

/// The relay draining `count` jobs written beforehand, against the same publisher
/// publishing the same jobs directly, as pipelined batches at once as the relay runs loops;
/// jobs/s of each, best of `rounds`.
pub async fn relay_throughput(broker: &Broker, count: usize, rounds: usize, section: &mut Section) {
    let vhost = broker.vhost("bench-outbox").await.expect("vhost");
    let database = Postgres::shared()
        .app_database("bench_outbox")
        .await
        .expect("database");
    let pool = sqlx::PgPool::connect(&database.producer_url)
        .await
        .expect("pool");
    let amqp = AmqpSettings::from_url(&vhost.amqp_url).expect("AMQP URL");
    let topology = Topology::new([EmailJob::KIND]).expect("topology");
    let publisher = Publisher::connect(&amqp, PublisherSettings::default(), topology, "bench")
        .await
        .expect("publisher");
    let jobs: Vec<EmailJob> = (0..count)
        .map(|n| EmailJob {
            image_id: uuid::Uuid::new_v4(),
            user_id: format!("bench-user-{n}"),
        })
        .collect();
    let (mut relayed, mut direct) = (0.0_f64, 0.0_f64);
    for _ in 0..rounds {
        // As many batches at once as the relay runs loops, each on its own lane.
        let loops = usize::from(OutboxSettings::default().relays);
        let began = Instant::now();
        let batches = jobs
            .chunks(count.div_ceil(loops))
            .map(|chunk| publisher.publish_batch(chunk));
        for published in futures_util::future::join_all(batches).await {
            published.expect("direct publish");
        }
        direct = direct.max(count as f64 / began.elapsed().as_secs_f64());
        relayed = relayed.max(relay_once(&pool, &publisher, &jobs).await);
    }
    let note = format!("{count} mail jobs, best of {rounds}; the relay as the producer ships it");
    section.add("relay: jobs/s", format!("{relayed:.0}"), &note);
    section.add(
        "direct publish_batch, as many at once as relay loops: jobs/s",
        format!("{direct:.0}"),
        &note,
    );
    section.add(
        "relay / direct",
        format!("{:.2}", relayed / direct),
        "what the outbox's round trips to PostgreSQL cost in throughput",
    );
}

/// Writes `jobs` into the outbox (not timed), then times a relay emptying it.
async fn relay_once(pool: &sqlx::PgPool, publisher: &Publisher, jobs: &[EmailJob]) -> f64 {
    let outbox = Outbox::new(OutboxSettings::default());
    for chunk in jobs.chunks(1000) {
        let encoded: Vec<_> = chunk
            .iter()
            .map(|job| outbox.encode(job).expect("encode"))
            .collect();
        let mut tx = pool.begin().await.expect("begin");
        outbox.enqueue(&mut tx, &encoded).await.expect("enqueue");
        tx.commit().await.expect("commit");
    }
    let relay = Relay::new(
        pool.clone(),
        publisher.clone(),
        OutboxSettings::default(),
        Duration::from_secs(10),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let began = Instant::now();
    let running = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    loop {
        let unsent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL")
                .fetch_one(pool)
                .await
                .expect("counting");
        if unsent == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = jobs.len() as f64 / began.elapsed().as_secs_f64();
    let _ = stop.send(());
    running.await.expect("relay");
    rate
}
