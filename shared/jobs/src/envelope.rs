//! The wire format: the JSON envelope every job travels in, and the AMQP properties around it.
//!
//! Producers in other languages only need this file's contract (see the README):
//! `{"id", "kind", "version", "created_at", "payload"}`, persistent, `application/json`,
//! `message_id` = id and `type` = kind.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::FieldTable;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::job::{Job, JobId};
use crate::trace::TraceContext;

/// The content type of every job body.
pub const CONTENT_TYPE: &str = "application/json";
/// AMQP `delivery_mode` for a message written to disk.
pub(crate) const PERSISTENT: u8 = 2;

#[derive(Serialize)]
struct OutgoingEnvelope<'a, P> {
    id: JobId,
    kind: &'static str,
    version: u32,
    created_at: DateTime<Utc>,
    payload: &'a P,
}

/// An envelope as read off the wire; the payload stays raw until the kind's handler decodes it.
#[derive(Debug, Deserialize)]
pub(crate) struct IncomingEnvelope<'a> {
    pub(crate) id: JobId,
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
    pub(crate) version: u32,
    pub(crate) created_at: DateTime<Utc>,
    #[serde(borrow)]
    pub(crate) payload: &'a RawValue,
}

impl<'a> IncomingEnvelope<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// A job serialised into its envelope, ready to publish.
#[derive(Debug, Clone)]
pub struct EncodedJob {
    /// The job's id.
    pub id: JobId,
    /// The job's kind, also its routing key.
    pub kind: &'static str,
    /// The JSON envelope.
    pub body: Vec<u8>,
    /// The trace it belongs to: the one in force where it was encoded, or a new one.
    pub trace: TraceContext,
}

impl EncodedJob {
    /// Wraps `job` in a fresh envelope, in the trace in force (see [`TraceContext`]).
    pub fn encode<J: Job>(job: &J) -> Result<Self, serde_json::Error> {
        let id = JobId::new();
        let body = serde_json::to_vec(&OutgoingEnvelope {
            id,
            kind: J::KIND,
            version: J::VERSION,
            created_at: Utc::now(),
            payload: job,
        })?;
        Ok(Self {
            id,
            kind: J::KIND,
            body,
            trace: TraceContext::for_new_job(),
        })
    }

    /// The AMQP properties of the wire contract.
    #[must_use]
    pub fn properties(&self) -> BasicProperties {
        job_properties(&self.id.to_string(), self.kind, self.headers())
    }

    /// Its headers: the `traceparent`.
    pub(crate) fn headers(&self) -> FieldTable {
        let mut headers = FieldTable::default();
        self.trace.write_into(&mut headers);
        headers
    }
}

/// Persistent JSON properties naming the job, with `headers`, for a job's first publish
/// (retries and dead letters are copies of the delivery's own).
pub(crate) fn job_properties(message_id: &str, kind: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(message_id.into())
        .with_type(kind.into())
        .with_timestamp(u64::try_from(Utc::now().timestamp()).unwrap_or_default())
        .with_headers(headers)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_jobs::Ping;

    #[test]
    fn an_encoded_job_reads_back_with_its_kind_version_and_payload() -> Result<(), serde_json::Error>
    {
        let encoded = EncodedJob::encode(&Ping { n: 7 })?;
        let incoming = IncomingEnvelope::parse(&encoded.body)?;
        assert_eq!(incoming.id, encoded.id);
        assert_eq!(incoming.kind, "ping");
        assert_eq!(incoming.version, 3);
        let ping: Ping = serde_json::from_str(incoming.payload.get())?;
        assert_eq!(ping.n, 7);
        Ok(())
    }

    #[test]
    fn properties_follow_the_wire_contract() -> Result<(), serde_json::Error> {
        let encoded = EncodedJob::encode(&Ping { n: 1 })?;
        let props = encoded.properties();
        assert_eq!(
            props.content_type().as_ref().map(|s| s.as_str()),
            Some(CONTENT_TYPE)
        );
        assert_eq!(*props.delivery_mode(), Some(PERSISTENT));
        assert_eq!(
            props.message_id().as_ref().map(|s| s.to_string()),
            Some(encoded.id.to_string())
        );
        assert_eq!(props.kind().as_ref().map(|s| s.as_str()), Some("ping"));
        Ok(())
    }
}
