//! `send_order_confirmation`: one confirmation mail per order, however often the job is
//! delivered.

use std::sync::Arc;

use mail::lettre::Message;
use mail::lettre::message::header::ContentType;
use mail::{mailbox, message_id};
use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Fulfilment;
use crate::OrderConfirmationJob;
use crate::database::OrderFacts;

pub async fn handle(fulfilment: Arc<Fulfilment>, job: OrderConfirmationJob) -> JobResult {
    let order = fulfilment.order(job.order_id).await?;
    let to = mailbox(&order.email).map_err(JobError::permanent)?;
    // The same Message-ID for every send of this order's confirmation: a send repeated
    // after a crash can be recognised by the receiver.
    let message = Message::builder()
        .message_id(Some(message_id(
            &format!("order-{}", job.order_id),
            &fulfilment.mail_from,
        )))
        .from(fulfilment.mail_from.clone())
        .to(to)
        .subject("Thank you for your order")
        .header(ContentType::TEXT_PLAIN)
        .body(body(&fulfilment.public_base_url, job, &order))
        .or_permanent("building the message")?;
    // `sending` before, `sent` after, each a statement of its own (see the photos' mail).
    let already_sent = fulfilment
        .store
        .begin_mail(job.order_id)
        .await
        .or_retry("recording the mail's start")?;
    if already_sent {
        tracing::info!(order_id = %job.order_id, "confirmation already sent");
        return Ok(());
    }
    fulfilment
        .mailer
        .send(message)
        .await
        .or_retry("sending the email")?;
    fulfilment
        .store
        .mail_sent(job.order_id)
        .await
        .or_retry("recording the email")?;
    Ok(())
}

/// The mail's text: the lines, the total and where to follow the order.
fn body(public_base_url: &str, job: OrderConfirmationJob, order: &OrderFacts) -> String {
    let lines: String = order
        .items
        .iter()
        .map(|line| {
            format!(
                "  {} x {}  {}\n",
                line.quantity,
                line.sku,
                money(i64::from(line.quantity) * line.price_cents)
            )
        })
        .collect();
    format!(
        "Hello,\n\nwe received your order {id} and your payment.\n\n{lines}  Total: {total}\n\n\
         Follow it at {base}/orders/{id}\n",
        id = job.order_id,
        total = money(order.total_cents),
        base = public_base_url.trim_end_matches('/'),
    )
}

/// Cents as `12.34`.
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}
