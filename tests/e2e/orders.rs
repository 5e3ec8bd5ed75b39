//! The store in the same stack: orders placed through the published port are handled by the
//! order workers alone (a compose service of their own, `WORKER_KINDS`), taking stock, mailing
//! and notifying the warehouse stand-in once each; a declined card is refused with 402.

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::time::Duration;
use support::wait_until;

use crate::stack::Stack;

/// Orders placed, one mug each.
const ORDERS: usize = 20;

pub async fn orders_flow(stack: &Stack) -> Result<((), String), String> {
    split_services(stack)?;
    let mugs = stock(stack, "MUG-01").await?;
    let declined = place(stack, "4000000000000002").await?;
    if declined.0 != 402 {
        return Err(format!("a declined card was answered {}", declined.0));
    }
    let placed: Vec<Result<(u16, Value), String>> = stream::iter(0..ORDERS)
        .map(|_| place(stack, "4242424242424242"))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut ids = Vec::new();
    for result in placed {
        let (status, body) = result?;
        if status != 202 {
            return Err(format!("an order was answered {status}: {body}"));
        }
        ids.push(body["order_id"].as_str().unwrap_or_default().to_owned());
    }
    wait_until(
        Duration::from_secs(120),
        "every order to be confirmed",
        || async {
            let mut confirmed = 0;
            for id in &ids {
                let status = get(stack, &format!("{}/orders/{id}", stack.base)).await;
                confirmed += usize::from(status.is_ok_and(|s| s["state"] == "confirmed"));
            }
            confirmed == ORDERS
        },
    )
    .await?;
    let shipments = get(stack, &format!("{}/shipments", stack.warehouse)).await?;
    let shipped = shipments.as_array().map_or(0, Vec::len);
    if shipped != ORDERS {
        return Err(format!(
            "the warehouse received {shipped} shipments for {ORDERS} orders"
        ));
    }
    let left = stock(stack, "MUG-01").await?;
    if mugs - left != i64::try_from(ORDERS).unwrap_or_default() {
        return Err(format!(
            "{ORDERS} orders took the mug stock from {mugs} to {left}"
        ));
    }
    Ok((
        (),
        format!(
            "{ORDERS} × 202, confirmed; {shipped} shipments; stock {mugs} → {left}; declined card 402"
        ),
    ))
}

/// The image workers consume no order kind, and the order workers no image kind.
fn split_services(stack: &Stack) -> Result<(), String> {
    for (service, foreign) in [
        ("worker", "update_inventory"),
        ("order-worker", "process_thumbnails"),
    ] {
        let logs = stack.compose.output(&["logs", "--no-color", service])?;
        let consuming: Vec<&str> = logs.lines().filter(|l| l.contains("consuming")).collect();
        if consuming.is_empty() || consuming.iter().any(|line| line.contains(foreign)) {
            return Err(format!(
                "{service} consumes {foreign} or nothing: {consuming:?}"
            ));
        }
    }
    Ok(())
}

async fn place(stack: &Stack, card: &str) -> Result<(u16, Value), String> {
    let order = json!({
        "email": "e2e@example.com",
        "items": [{ "sku": "MUG-01", "quantity": 1 }],
        "card": { "number": card, "exp_month": 12, "exp_year": 2099 },
    });
    let response = stack
        .http
        .post(format!("{}/orders", stack.base))
        .json(&order)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn stock(stack: &Stack, sku: &str) -> Result<i64, String> {
    let products = get(stack, &format!("{}/products", stack.base)).await?;
    products
        .as_array()
        .and_then(|all| all.iter().find(|p| p["sku"] == sku))
        .and_then(|p| p["stock"].as_i64())
        .ok_or_else(|| format!("no stock for {sku} in {products}"))
}

async fn get(stack: &Stack, url: &str) -> Result<Value, String> {
    let response = stack
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}
