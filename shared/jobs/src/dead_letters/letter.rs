//! One dead letter as an operator reads it: its job, why it failed, and every header.

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::envelope::IncomingEnvelope;
use crate::headers::{JOB_ATTEMPTS, JOB_ERROR, JOB_FAILED_AT, header_i64, header_str, header_u32};

/// A failed job in its dead-letter queue.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The kind whose dead-letter queue holds it.
    pub kind: String,
    /// The job's id (the message id), when it has one.
    pub id: Option<String>,
    /// Why it was dead-lettered (`x-job-error`).
    pub reason: Option<String>,
    /// How many times it ran (`x-job-attempts`).
    pub attempts: Option<u32>,
    /// When its last run failed (`x-job-failed-at`).
    pub failed_at: Option<DateTime<Utc>>,
    /// When the job was created (the envelope's `created_at`), when the body is an envelope.
    pub created_at: Option<DateTime<Utc>>,
    /// Every AMQP header, as JSON.
    pub headers: Map<String, Value>,
    /// The body: JSON when it is, else its text (lossy).
    pub body: Value,
}

impl DeadLetter {
    pub(crate) fn read(kind: &str, delivery: &Delivery) -> Self {
        let headers = delivery.properties.headers().as_ref();
        let id = delivery.properties.message_id().as_ref();
        Self {
            kind: kind.to_owned(),
            id: id.map(ToString::to_string),
            reason: header_str(headers, JOB_ERROR).or_else(|| {
                // Dead-lettered by the broker itself (its delivery limit), not by a worker.
                header_str(headers, "x-first-death-reason")
                    .map(|why| format!("dead-lettered by the broker: {why}"))
            }),
            attempts: header_u32(headers, JOB_ATTEMPTS),
            failed_at: header_i64(headers, JOB_FAILED_AT)
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            created_at: IncomingEnvelope::parse(&delivery.data)
                .ok()
                .map(|envelope| envelope.created_at),
            headers: headers.map(table_json).unwrap_or_default(),
            body: serde_json::from_slice(&delivery.data).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&delivery.data).into_owned())
            }),
        }
    }
}

fn table_json(table: &FieldTable) -> Map<String, Value> {
    table
        .inner()
        .iter()
        .map(|(key, value)| (key.to_string(), value_json(value)))
        .collect()
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(v) => Value::Bool(*v),
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => (*v).into(),
        AMQPValue::Timestamp(v) => (*v).into(),
        AMQPValue::Float(v) => f64::from(*v).into(),
        AMQPValue::Double(v) => (*v).into(),
        AMQPValue::ShortString(v) => v.as_str().into(),
        AMQPValue::LongString(v) => String::from_utf8_lossy(v.as_bytes()).into(),
        AMQPValue::FieldArray(v) => v.as_slice().iter().map(value_json).collect(),
        AMQPValue::FieldTable(v) => Value::Object(table_json(v)),
        AMQPValue::ByteArray(v) => String::from_utf8_lossy(v.as_slice()).into(),
        AMQPValue::DecimalValue(v) => format!("{v:?}").into(),
        AMQPValue::Void => Value::Null,
    }
}
