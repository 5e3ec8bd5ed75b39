//! `notify_warehouse`: one shipment notice per order, de-duplicated by the warehouse.

use std::sync::Arc;

use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Fulfilment;
use crate::{WarehouseError, WarehouseJob};

pub async fn handle(fulfilment: Arc<Fulfilment>, job: WarehouseJob) -> JobResult {
    let order = fulfilment.order(job.order_id).await?;
    match fulfilment
        .warehouse
        .notify(job.order_id, &order.items)
        .await
    {
        Ok(()) => {}
        // A 5xx, a timeout, a refused connection: not the order's fault.
        Err(error @ WarehouseError::Unavailable(_)) => {
            return Err(JobError::retry(error.to_string()));
        }
        Err(error @ WarehouseError::Refused { .. }) => {
            return Err(JobError::permanent(error.to_string()));
        }
    }
    fulfilment
        .store
        .warehouse_notified(job.order_id)
        .await
        .or_retry("recording the warehouse notice")?;
    Ok(())
}
