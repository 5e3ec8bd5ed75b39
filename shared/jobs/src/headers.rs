//! The message headers of the wire contract, and reading integers out of AMQP tables.

use lapin::types::{AMQPValue, FieldTable};

/// On a retried or dead-lettered job: why its last run failed, readable.
pub const JOB_ERROR: &str = "x-job-error";
/// On a retried or dead-lettered job: how many times it has run.
pub const JOB_ATTEMPTS: &str = "x-job-attempts";
/// How many times workers were lost while this job was in their hands (a crash, a lost
/// connection, a broker restart), counted by the runtime itself: RabbitMQ's own count differs
/// between versions and, from 4.3, ignores lost consumers.
pub const JOB_ORPHANED: &str = "x-job-orphaned";
/// How many times this job's worker was lost while the job ran alone in quarantine: the
/// evidence that it crashes or hangs its worker.
pub const JOB_CRASHES: &str = "x-job-crashes";
/// On a delayed job: the earliest time it may run, in milliseconds since the Unix epoch.
/// Until then it waits in wait queues; a worker that receives it early parks it again.
pub const JOB_NOT_BEFORE: &str = "x-job-not-before";
/// On a retried or dead-lettered job: when its last run failed, in milliseconds since the
/// Unix epoch.
pub const JOB_FAILED_AT: &str = "x-job-failed-at";
/// On a job replayed from its dead-letter queue: how many times it was.
pub const JOB_REPLAYED: &str = "x-job-replayed";
/// Set by quorum queues on a redelivery: how many times the broker delivered this message
/// without an ack (the worker crashed, timed out on the broker or lost its connection).
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// An integer header as `u32`, whatever integer width the sender chose.
#[must_use]
pub fn header_u32(headers: Option<&FieldTable>, name: &str) -> Option<u32> {
    u32::try_from(header_i64(headers, name)?).ok()
}

/// An integer header as `i64`, whatever integer width the sender chose.
#[must_use]
pub fn header_i64(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    let value = headers?.inner().get(name)?;
    Some(match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok()?,
        _ => return None,
    })
}

/// A string header, if present and textual.
#[must_use]
pub fn header_str(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_headers_read_whatever_their_width() {
        let mut table = FieldTable::default();
        table.insert("a".into(), AMQPValue::LongLongInt(3));
        table.insert("b".into(), AMQPValue::ShortShortUInt(4));
        table.insert("c".into(), AMQPValue::LongInt(-1));
        table.insert("d".into(), AMQPValue::LongString("x".into()));
        assert_eq!(header_u32(Some(&table), "a"), Some(3));
        assert_eq!(header_u32(Some(&table), "b"), Some(4));
        assert_eq!(header_u32(Some(&table), "c"), None);
        assert_eq!(header_u32(Some(&table), "d"), None);
        assert_eq!(header_u32(None, "a"), None);
        assert_eq!(header_str(Some(&table), "d").as_deref(), Some("x"));
    }
}
