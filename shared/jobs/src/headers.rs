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
/// Set by quorum queues on a redelivery: how many times the broker delivered this message
/// without an ack (the worker crashed, timed out on the broker or lost its connection).
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// An integer header as `u32`, whatever integer width the sender chose.
#[must_use]
pub fn header_u32(headers: Option<&FieldTable>, name: &str) -> Option<u32> {
    let value = headers?.inner().get(name)?;
    let wide: i128 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => (*v).into(),
        AMQPValue::Timestamp(v) => (*v).into(),
        _ => return None,
    };
    u32::try_from(wide).ok()
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
