//! One trace from an HTTP request to every job it causes: the W3C trace context
//! (`traceparent`), carried in each job's headers, so an upload's log lines in the producer
//! and in every worker share one trace id.
//!
//! The context in force is task-local: the producer's middleware sets it per request, the
//! runtime per job run. A job published inside it carries it; a handler's follow-up jobs
//! inherit it from the run; a job published outside any starts a trace of its own. Retries,
//! dead letters and replays keep the header they came with.

use std::fmt;
use std::future::Future;

use lapin::types::{AMQPValue, FieldTable};

use crate::headers::header_str;

/// The W3C header name, on HTTP requests and on jobs alike.
pub const TRACEPARENT: &str = "traceparent";

/// The only version this writes; later versions are read by their first four fields.
const VERSION: &str = "00";
/// The `sampled` flag, set on a trace started here: its log lines are recorded.
const SAMPLED: u8 = 0x01;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A position in a trace: the trace, the span (request, job run) that is its caller, and
/// the W3C flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

impl TraceContext {
    /// A new trace, its first span.
    #[must_use]
    pub fn new_root() -> Self {
        Self {
            trace_id: non_zero(fastrand::u128(..)),
            span_id: non_zero(fastrand::u64(..)),
            flags: SAMPLED,
        }
    }

    /// A span of the same trace called from this one (a request's handling, a job's run).
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: non_zero(fastrand::u64(..)),
            ..*self
        }
    }

    /// Reads a `traceparent` value; `None` for anything the W3C rules call invalid (then
    /// the receiver starts a trace of its own).
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut fields = value.split('-');
        let version = fields.next().filter(|v| is_hex(v, 2) && *v != "ff")?;
        let trace_id = fields.next().filter(|t| is_hex(t, 32))?;
        let span_id = fields.next().filter(|s| is_hex(s, 16))?;
        let flags = fields.next().filter(|f| is_hex(f, 2))?;
        // Version 00 has exactly four fields; a later version may add more after them.
        if version == VERSION && fields.next().is_some() {
            return None;
        }
        let context = Self {
            trace_id: u128::from_str_radix(trace_id, 16).ok()?,
            span_id: u64::from_str_radix(span_id, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (context.trace_id != 0 && context.span_id != 0).then_some(context)
    }

    /// The trace id, shown (in log lines) as 32 lowercase hex digits.
    #[must_use]
    pub fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }

    /// The span id, 16 lowercase hex digits.
    #[must_use]
    pub fn span_id(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// The context in force in this task, if any.
    #[must_use]
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|current| *current).ok()
    }

    /// Runs `future` in this context: the jobs it publishes carry it.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// `future` made to run in the context in force now, wherever it is polled: for a task
    /// spawned from here (with `tracing::Instrument::in_current_span` for its log lines).
    pub fn in_current<F: Future>(future: F) -> impl Future<Output = F::Output> {
        let current = Self::current();
        async move {
            match current {
                Some(trace) => trace.scope(future).await,
                None => future.await,
            }
        }
    }

    /// The context a job published now carries: the one in force, or a new trace.
    pub(crate) fn for_new_job() -> Self {
        Self::current().unwrap_or_else(Self::new_root)
    }

    /// The context a received job runs in: a child of its header's, or a new trace when it
    /// has none (a producer that does not trace) or an invalid one.
    pub(crate) fn for_run(headers: Option<&FieldTable>) -> Self {
        header_str(headers, TRACEPARENT)
            .and_then(|value| Self::parse(&value))
            .map_or_else(Self::new_root, |parent| parent.child())
    }

    /// Writes this context into a job's headers.
    pub(crate) fn write_into(&self, headers: &mut FieldTable) {
        headers.insert(
            TRACEPARENT.into(),
            AMQPValue::LongString(self.to_string().into()),
        );
    }
}

/// A trace's id. A span field of its own on every request and job run, so it is written
/// straight into the line, not formatted into a string first.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// Compared with its hex form, as a log line or a `traceparent` shows it.
impl PartialEq<&str> for TraceId {
    fn eq(&self, other: &&str) -> bool {
        is_hex(other, 32) && u128::from_str_radix(other, 16) == Ok(self.0)
    }
}

/// The `traceparent` value.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{VERSION}-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

/// Lowercase hex of exactly `len` digits, as the W3C format requires.
fn is_hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// All-zero ids are invalid; a random draw of zero (never in practice) becomes one.
fn non_zero<T: From<u8> + PartialEq>(id: T) -> T {
    if id == T::from(0) { T::from(1) } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    type TestResult = Result<(), String>;

    fn parsed(value: &str) -> Result<TraceContext, String> {
        TraceContext::parse(value).ok_or_else(|| format!("refused: {value}"))
    }

    #[test]
    fn a_valid_traceparent_reads_back_as_written() -> TestResult {
        let context = parsed(GIVEN)?;
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id(), "00f067aa0ba902b7");
        assert_eq!(context.to_string(), GIVEN);
        Ok(())
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for invalid in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ] {
            assert_eq!(TraceContext::parse(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() -> TestResult {
        let context = parsed("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes")?;
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // Written back in the version this knows.
        assert!(context.to_string().starts_with("00-"));
        Ok(())
    }

    #[test]
    fn a_child_keeps_the_trace_and_its_flags_with_a_span_of_its_own() -> TestResult {
        let parent = parsed(GIVEN)?;
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert!(child.to_string().ends_with("-01"));
        Ok(())
    }

    #[test]
    fn a_run_continues_its_jobs_trace_or_starts_one() -> TestResult {
        let mut headers = FieldTable::default();
        parsed(GIVEN)?.write_into(&mut headers);
        let run = TraceContext::for_run(Some(&headers));
        assert_eq!(run.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let untraced = TraceContext::for_run(None);
        assert_ne!(untraced.trace_id(), run.trace_id());
        parsed(&untraced.to_string())?;
        Ok(())
    }

    #[tokio::test]
    async fn a_job_published_in_a_scope_carries_it_and_outside_starts_a_trace() -> TestResult {
        let given = parsed(GIVEN)?;
        let inside = given.scope(async { TraceContext::for_new_job() }).await;
        assert_eq!(inside, given);
        assert_eq!(TraceContext::current(), None);
        let outside = TraceContext::for_new_job();
        assert_ne!(outside.trace_id(), given.trace_id());
        Ok(())
    }

    #[tokio::test]
    async fn a_task_spawned_in_a_scope_stays_in_it_when_told_to() -> TestResult {
        let given = parsed(GIVEN)?;
        let (told, untold) = given
            .scope(async {
                let told =
                    tokio::spawn(TraceContext::in_current(async { TraceContext::current() }));
                let untold = tokio::spawn(async { TraceContext::current() });
                (told.await, untold.await)
            })
            .await;
        let spawned = (
            told.map_err(|e| e.to_string())?,
            untold.map_err(|e| e.to_string())?,
        );
        assert_eq!(spawned, (Some(given), None));
        Ok(())
    }
}
