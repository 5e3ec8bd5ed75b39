//! What the store shows: its products, and an order's state derived from its facts and
//! its jobs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use dbkit::{JobState, JobStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ORDER_KINDS;

/// A product, as `GET /products` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Product {
    /// Its stock-keeping unit, what an order names.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its price, in cents.
    pub price_cents: i64,
    /// How many are left.
    pub stock: i32,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct OrderLine {
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: i32,
    /// The price of one when ordered, in cents.
    pub price_cents: i64,
}

/// An order as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Paid; its jobs are queued or running.
    Accepted,
    /// Stock taken, confirmation sent, the warehouse told.
    Confirmed,
    /// A person must look at it (see `attention_reason`), e.g. an item is out of stock.
    NeedsAttention,
    /// A job failed for good (see its `jobs`).
    Failed,
}

/// `GET /orders/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderStatus {
    /// The order's id.
    pub order_id: Uuid,
    /// The order as a whole.
    pub state: OrderState,
    /// Sum of its lines, in cents.
    pub total_cents: i64,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// Each job by kind.
    pub jobs: BTreeMap<String, JobStatus>,
    /// Why it needs attention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_reason: Option<String>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

/// The order's state: needing attention comes first (a person must act), then a failed job;
/// it is confirmed once every job of the domain is done.
#[must_use]
pub fn order_state(
    attention_reason: Option<&str>,
    jobs: &BTreeMap<String, JobStatus>,
) -> OrderState {
    if attention_reason.is_some() {
        OrderState::NeedsAttention
    } else if jobs.values().any(|job| job.state == JobState::Failed) {
        OrderState::Failed
    } else if ORDER_KINDS.iter().all(|kind| {
        jobs.get(*kind)
            .is_some_and(|job| job.state == JobState::Done)
    }) {
        OrderState::Confirmed
    } else {
        OrderState::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(states: &[JobState]) -> BTreeMap<String, JobStatus> {
        ORDER_KINDS
            .iter()
            .zip(states)
            .map(|(kind, state)| {
                let status = JobStatus {
                    state: *state,
                    attempt: 1,
                    error: None,
                };
                ((*kind).to_owned(), status)
            })
            .collect()
    }

    #[test]
    fn an_order_is_confirmed_when_every_job_is_done_and_attention_outranks_a_failure() {
        let done = [JobState::Done; 3];
        assert_eq!(order_state(None, &jobs(&done)), OrderState::Confirmed);
        let running = [JobState::Done, JobState::Running, JobState::Done];
        assert_eq!(order_state(None, &jobs(&running)), OrderState::Accepted);
        let failed = [JobState::Failed, JobState::Queued, JobState::Done];
        assert_eq!(order_state(None, &jobs(&failed)), OrderState::Failed);
        assert_eq!(
            order_state(Some("out of stock: LAMP-01"), &jobs(&failed)),
            OrderState::NeedsAttention
        );
    }
}
