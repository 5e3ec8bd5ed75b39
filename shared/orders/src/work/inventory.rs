//! `update_inventory`: take the order's stock once, then queue the warehouse notice.

use std::sync::Arc;

use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Fulfilment;
use crate::database::StockOutcome;
use crate::{InventoryJob, WarehouseJob};

pub async fn handle(fulfilment: Arc<Fulfilment>, job: InventoryJob) -> JobResult {
    let order_id = job.order_id;
    let outcome = fulfilment
        .store
        .take_stock(order_id)
        .await
        .or_retry("taking the order's stock")?;
    match outcome {
        StockOutcome::Taken => tracing::info!(%order_id, "stock taken"),
        // A redelivery after the stock was taken: the notice may not have been queued yet
        // (the worker died in between), so it is queued again; the warehouse de-duplicates.
        StockOutcome::AlreadyTaken => tracing::info!(%order_id, "stock already taken"),
        StockOutcome::Short(skus) => {
            // The order waits for a person (restock, then replay the dead letter); trying
            // again on its own would not help.
            return Err(JobError::permanent(format!(
                "out of stock: {}",
                skus.join(", ")
            )));
        }
        StockOutcome::NoOrder => {
            return Err(JobError::permanent(format!(
                "order {order_id} does not exist"
            )));
        }
    }
    fulfilment
        .publisher
        .publish(&WarehouseJob { order_id })
        .await
        .or_retry("queueing the warehouse notice")?;
    Ok(())
}
