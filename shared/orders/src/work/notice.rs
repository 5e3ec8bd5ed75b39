//! `notify_warehouse`: one shipment notice per order. A delivery after the warehouse
//! acknowledged the order sends nothing; one after a crash between the call and its record
//! sends again under the same idempotency key, which the warehouse de-duplicates.

use std::sync::Arc;

use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Fulfilment;
use crate::{WarehouseError, WarehouseJob};

pub async fn handle(fulfilment: Arc<Fulfilment>, job: WarehouseJob) -> JobResult {
    let order = fulfilment.order(job.order_id).await?;
    if order.warehouse_notified {
        tracing::info!(order_id = %job.order_id, "the warehouse has the order already");
        return Ok(());
    }
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
