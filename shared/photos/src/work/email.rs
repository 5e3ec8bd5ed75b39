//! `send_email`: one confirmation mail per upload, however often the job is delivered.

use std::sync::Arc;

use crate::EmailJob;
use mail::lettre::Message;
use mail::lettre::message::header::ContentType;
use rabbitmq_jobs::{JobError, JobResult, ResultExt};

use super::Pipeline;
use mail::{mailbox, message_id};

pub async fn handle(pipeline: Arc<Pipeline>, job: EmailJob) -> JobResult {
    let Some(facts) = pipeline.facts(job.image_id).await? else {
        return Ok(());
    };
    let recipient = format!("{}@{}", facts.user_id, pipeline.user_email_domain);
    let to = mailbox(&recipient).map_err(JobError::permanent)?;
    let status_url = format!(
        "{}/images/{}",
        pipeline.public_base_url.trim_end_matches('/'),
        job.image_id
    );
    // The same Message-ID for every send of this upload's confirmation: a send repeated
    // after a crash rewrites the outbox file, and SMTP receivers can deduplicate it.
    let message = Message::builder()
        .message_id(Some(message_id(
            &format!("upload-{}", job.image_id),
            &pipeline.mail_from,
        )))
        .from(pipeline.mail_from.clone())
        .to(to)
        .subject("We received your new profile picture")
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "Hello {},\n\nwe received your picture and are preparing it.\nFollow its progress at {status_url}\n",
            facts.user_id
        ))
        .or_permanent("building the message")?;
    // `sending` before, `sent` after, each in a statement of its own: a crash in between
    // sends again on redelivery (same Message-ID), a delivery after `sent` sends nothing.
    let already_sent = pipeline
        .store
        .begin_email(job.image_id, &recipient)
        .await
        .or_retry("recording the mail's start")?;
    if already_sent {
        tracing::info!(image_id = %job.image_id, "confirmation already sent");
        return Ok(());
    }
    pipeline
        .mailer
        .send(message)
        .await
        .or_retry("sending the email")?;
    pipeline
        .store
        .email_sent(job.image_id)
        .await
        .or_retry("recording the email")?;
    Ok(())
}
