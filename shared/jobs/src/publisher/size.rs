//! The one size check of a job, for direct publishing and for the outbox: RabbitMQ refuses
//! messages over its limit, so a job over `MAX_MESSAGE_SIZE` is refused before it is sent.

use super::PublishError;
use crate::envelope::EncodedJob;
use crate::job::Job;

/// Encodes `job`, refusing it if its body is over `max` bytes: the one check for direct
/// publishing and for the outbox.
pub(crate) fn encode_within<J: Job>(job: &J, max: usize) -> Result<EncodedJob, PublishError> {
    let encoded = EncodedJob::encode(job).map_err(|source| PublishError::Encode {
        kind: J::KIND.to_owned(),
        source,
    })?;
    check_size(&encoded, max)?;
    Ok(encoded)
}

/// Refuses a job whose body is over `max` bytes.
pub(crate) fn check_size(job: &EncodedJob, max: usize) -> Result<(), PublishError> {
    if job.body.len() > max {
        return Err(PublishError::TooLarge {
            kind: job.kind.to_owned(),
            size: job.body.len(),
            max,
        });
    }
    Ok(())
}
