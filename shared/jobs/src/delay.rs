//! Delayed jobs without a broker plugin: a job that may not run before a given time waits in
//! the retry wait queues, hopping from tier to tier until it is due.
//!
//! The job carries its due time in [`JOB_NOT_BEFORE`]. It is published to the wait tier
//! just below the time left; when that tier's TTL returns it to its work queue early, the
//! worker parks it again in the tier below the time still left, and so on. Every hop rounds
//! down, so a job never runs early and runs at most one shortest tier (100 ms) late, plus
//! the queue's wait. Delays longer than the longest tier (an hour) chain through it. The
//! wait queues are durable quorum queues, so a delay survives a broker restart.

use chrono::{DateTime, TimeDelta, Utc};
use lapin::types::{AMQPValue, FieldTable};

use crate::headers::{JOB_NOT_BEFORE, header_i64};
use crate::retry::WaitTier;

/// `now + delay`, saturating at the end of time rather than failing.
pub(crate) fn due_after(now: DateTime<Utc>, delay: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|delay| now.checked_add_signed(delay))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The tier to wait in next for a job due at `due`, or `None` when it is due.
pub(crate) fn next_tier(due: DateTime<Utc>, now: DateTime<Utc>) -> Option<WaitTier> {
    let left = (due - now).to_std().ok().filter(|left| !left.is_zero())?;
    Some(WaitTier::round_down(left))
}

/// The tier a received job still has to wait in, from its headers; `None` when it has no
/// due time or is due.
pub(crate) fn tier_for(headers: Option<&FieldTable>, now: DateTime<Utc>) -> Option<WaitTier> {
    let due = DateTime::<Utc>::from_timestamp_millis(header_i64(headers, JOB_NOT_BEFORE)?)?;
    next_tier(due, now)
}

/// Writes the header that carries `due`.
pub(crate) fn write_due(headers: &mut FieldTable, due: DateTime<Utc>) {
    headers.insert(
        JOB_NOT_BEFORE.into(),
        AMQPValue::LongLongInt(due.timestamp_millis()),
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tier_after(now: DateTime<Utc>, left: Duration) -> Option<Duration> {
        next_tier(due_after(now, left), now).map(|tier| tier.delay())
    }

    #[test]
    fn a_delay_waits_in_the_tier_below_the_time_left_until_it_is_due() {
        let now = Utc::now();
        assert_eq!(
            tier_after(now, Duration::from_millis(2_500)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            tier_after(now, Duration::from_millis(500)),
            Some(Duration::from_millis(500))
        );
        // Under the shortest tier: one more short wait, never a run before the due time.
        assert_eq!(
            tier_after(now, Duration::from_millis(30)),
            Some(Duration::from_millis(100))
        );
        assert_eq!(tier_after(now, Duration::ZERO), None);
        assert_eq!(next_tier(now - TimeDelta::seconds(5), now), None);
    }

    #[test]
    fn a_delay_longer_than_the_longest_tier_chains_through_it() {
        let start = Utc::now();
        let due = due_after(start, Duration::from_secs(3 * 3_600 + 90));
        let mut now = start;
        let mut hops = Vec::new();
        while let Some(tier) = next_tier(due, now) {
            hops.push(tier.delay().as_secs_f64());
            now = due_after(now, tier.delay());
        }
        assert_eq!(hops, [3_600.0, 3_600.0, 3_600.0, 60.0, 30.0]);
        assert!(now >= due);
    }

    #[test]
    fn the_due_time_reads_back_from_the_headers() {
        let now = Utc::now();
        let mut headers = FieldTable::default();
        write_due(&mut headers, due_after(now, Duration::from_secs(7)));
        assert_eq!(
            tier_for(Some(&headers), now).map(|t| t.delay()),
            Some(Duration::from_secs(5))
        );
        assert_eq!(tier_for(Some(&FieldTable::default()), now), None);
        assert_eq!(tier_for(None, now), None);
        assert!(due_after(now, Duration::MAX) > now);
    }
}
