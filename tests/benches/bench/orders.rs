//! Orders beside uploads: the store's one synchronous step (the card check, recording the
//! order, two confirms) against the photo app's (decoding and storing the image, recording
//! it, three confirms), through the same producer as compose.yaml ships it, sent side by side
//! at the same rate so that both meet the same load. Response times from each request's due
//! time; every job of every accepted order and upload must then be done.

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Broker, wait_until};

use crate::report::{Section, p50_p99_ratio, quantile};
use crate::spike::stack::{self, JOBS_PER_UPLOAD, Stack};

/// Jobs each order makes: stock, mail, warehouse.
const JOBS_PER_ORDER: i64 = 3;

/// Sends `count` orders and `count` uploads at `rate` each, side by side, with one worker;
/// adds the figures to `section`.
pub async fn run(
    bin: &std::path::Path,
    broker: &Broker,
    images: &[Vec<u8>],
    count: usize,
    rate: f64,
    section: &mut Section,
) {
    let stack = stack::start(bin, broker, 1).await;
    stack.wait_for_consumers(1).await;
    // Enough stock that every order is taken: the response, not the shortage, is measured.
    sqlx::query("UPDATE products SET stock = 1000000")
        .execute(&stack.db)
        .await
        .expect("stocking up");
    let (orders, uploads) = send(&stack, images, count, rate).await;
    let accepted = (orders.len(), uploads.len());
    let all = i64::try_from(orders.len()).unwrap_or(i64::MAX) * JOBS_PER_ORDER;
    let drained = wait_until(
        Duration::from_secs(900),
        "every job of every accepted order to be done",
        || async { order_jobs_done(&stack).await >= all },
    )
    .await;
    let note = format!("{count} of each at {rate:.0}/s each, side by side, 1 worker");
    let row = |times: &[f64]| {
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            quantile(times, 0.5),
            quantile(times, 0.99),
            times.last().copied().unwrap_or(0.0)
        )
    };
    section.add(
        "orders: accepted",
        format!("{} of {count}", accepted.0),
        &note,
    );
    section.add("orders: response p50 / p99 / max", row(&orders), &note);
    section.add(
        "uploads (640×480): response p50 / p99 / max",
        row(&uploads),
        &note,
    );
    section.add(
        "order / upload response, p50 and p99",
        p50_p99_ratio(&orders, &uploads),
        "target: the same class (at most 1)",
    );
    section.add(
        "orders: lost",
        format!("{} jobs", all - order_jobs_done(&stack).await),
        if drained.is_ok() {
            "jobs of accepted orders not done (stock, mail, warehouse: 3 each)"
        } else {
            "TIMED OUT"
        },
    );
    let uploads_all = i64::try_from(accepted.1).unwrap_or(i64::MAX) * JOBS_PER_UPLOAD;
    let waited = wait_until(Duration::from_secs(900), "the uploads' jobs", || async {
        stack.jobs_done().await >= uploads_all
    })
    .await;
    section.add(
        "uploads beside the orders: lost",
        format!("{} jobs", uploads_all - stack.jobs_done().await),
        if waited.is_ok() { "" } else { "TIMED OUT" },
    );
}

/// Sends an order and an upload at each tick; returns the accepted ones' sorted response
/// times (ms), each from its due time.
async fn send(stack: &Stack, images: &[Vec<u8>], count: usize, rate: f64) -> (Vec<f64>, Vec<f64>) {
    let http = reqwest::Client::new();
    let mut times = paced(count, rate, |n| {
        let order = http.post(format!("{}/orders", stack.base)).json(&json!({
            "email": format!("bench{n}@example.com"),
            "items": [{ "sku": "MUG-01", "quantity": 1 }, { "sku": "STICKERS", "quantity": 2 }],
            "card": { "number": "4242424242424242", "exp_month": 12, "exp_year": 2099 },
        }));
        let upload = http
            .post(format!("{}/users/bench{n}/avatar", stack.base))
            .header("content-type", "image/jpeg")
            .body(images[n % images.len()].clone());
        [order, upload]
    })
    .await;
    let uploads = times.pop().unwrap_or_default();
    (times.pop().unwrap_or_default(), uploads)
}

/// Sends the `K` requests `make(n)` builds at each of `count` ticks at `rate`, side by side;
/// returns for each of the `K` the accepted (202) ones' sorted response times (ms), each
/// from its due time, so that a late send counts against the response.
pub async fn paced<const K: usize>(
    count: usize,
    rate: f64,
    mut make: impl FnMut(usize) -> [reqwest::RequestBuilder; K],
) -> Vec<Vec<f64>> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent: Vec<tokio::task::JoinSet<Option<f64>>> =
        (0..K).map(|_| tokio::task::JoinSet::new()).collect();
    let start = Instant::now();
    for n in 0..count {
        ticks.tick().await;
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        for (set, request) in sent.iter_mut().zip(make(n)) {
            set.spawn(timed(request, due));
        }
    }
    let mut times = Vec::with_capacity(K);
    for set in sent {
        times.push(accepted(set.join_all().await));
    }
    times
}

async fn timed(request: reqwest::RequestBuilder, due: Instant) -> Option<f64> {
    let response = request.send().await;
    let millis = due.elapsed().as_secs_f64() * 1000.0;
    response.is_ok_and(|r| r.status() == 202).then_some(millis)
}

fn accepted(results: Vec<Option<f64>>) -> Vec<f64> {
    let mut times: Vec<f64> = results.into_iter().flatten().collect();
    times.sort_by(f64::total_cmp);
    times
}

async fn order_jobs_done(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM order_jobs WHERE state = 'done'")
        .fetch_one(&stack.db)
        .await
        .unwrap_or(0)
}
