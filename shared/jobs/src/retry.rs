//! When a failed job runs again: exponential backoff with jitter, rounded to a wait tier.
//!
//! A retry waits in a broker queue, not in the worker: the worker acks the failed delivery
//! after parking a copy in the wait queue of the right tier, whose TTL dead-letters it back
//! to `jobs`. Per-message TTL would only expire messages at the head of a queue, so every tier
//! is its own queue with one queue-wide TTL, and every backoff is rounded down to a tier.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How many times a kind runs and how long it waits between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all, the first included; 1 means never retried.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with every further failure.
    pub base_delay: Duration,
    /// The longest wait, whatever the attempt.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Five runs, waiting about 1 s, 2 s, 4 s, 8 s (with jitter), capped at 5 minutes.
    pub const DEFAULT: Self = Self::new(5, Duration::from_secs(1), Duration::from_secs(300));

    /// A policy; `max_attempts` counts the first run.
    #[must_use]
    pub const fn new(max_attempts: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            max_attempts,
            base_delay,
            max_delay,
        }
    }

    /// What to do after run number `attempt` (1-based) failed with a retryable error.
    #[must_use]
    pub fn after_failure(&self, attempt: u32) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        RetryDecision::RetryIn(WaitTier::round_down(self.backoff(attempt)))
    }

    /// The jittered wait after run `attempt`: uniformly in [d/2, d] for d = base·2^(attempt-1),
    /// capped ("equal jitter"), so that retries of a burst spread out but still grow.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses `max_attempts:base_delay:max_delay`, e.g. `5:1s:5m`.
impl FromStr for RetryPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [attempts, base, cap] = parts.as_slice() else {
            return Err(format!(
                "retry policy `{s}` is not `max_attempts:base_delay:max_delay` (e.g. `5:1s:5m`)"
            ));
        };
        let max_attempts: u32 = attempts
            .parse()
            .map_err(|e| format!("max_attempts `{attempts}`: {e}"))?;
        if max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        let base_delay =
            humantime::parse_duration(base).map_err(|e| format!("base_delay `{base}`: {e}"))?;
        let max_delay =
            humantime::parse_duration(cap).map_err(|e| format!("max_delay `{cap}`: {e}"))?;
        Ok(Self::new(max_attempts, base_delay, max_delay))
    }
}

impl fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.max_attempts,
            humantime::format_duration(self.base_delay),
            humantime::format_duration(self.max_delay)
        )
    }
}

/// The outcome of [`RetryPolicy::after_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Park the job in this tier's wait queue.
    RetryIn(WaitTier),
    /// Attempts are used up: dead-letter it.
    GiveUp,
}

/// One of the fixed retry delays, each with its own wait queue `jobs.wait.<ms>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaitTier(Duration);

/// The tiers, roughly a 1-2-5 series from 100 ms to one hour.
const TIER_MILLIS: [u64; 16] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_200_000, 1_800_000, 3_600_000,
];

impl WaitTier {
    /// Every tier, shortest first.
    pub fn all() -> impl Iterator<Item = Self> {
        TIER_MILLIS
            .iter()
            .map(|ms| Self(Duration::from_millis(*ms)))
    }

    /// The longest tier not longer than `delay` (the shortest tier for anything below it).
    #[must_use]
    pub fn round_down(delay: Duration) -> Self {
        Self::all()
            .take_while(|tier| tier.0 <= delay)
            .last()
            .unwrap_or(Self(Duration::from_millis(TIER_MILLIS[0])))
    }

    /// How long a job waits in this tier.
    #[must_use]
    pub fn delay(&self) -> Duration {
        self.0
    }

    /// The tier's wait queue and its fanout exchange share this name.
    #[must_use]
    pub fn queue_name(&self) -> String {
        format!("jobs.wait.{}", self.0.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let policy = RetryPolicy::new(10, Duration::from_secs(1), Duration::from_secs(10));
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_secs(5) && late <= Duration::from_secs(10));
        }
    }

    #[test]
    fn the_last_attempt_gives_up() {
        let policy = RetryPolicy::new(3, Duration::from_secs(1), Duration::from_secs(10));
        assert!(matches!(policy.after_failure(2), RetryDecision::RetryIn(_)));
        assert_eq!(policy.after_failure(3), RetryDecision::GiveUp);
        assert_eq!(
            RetryPolicy::new(1, Duration::ZERO, Duration::ZERO).after_failure(1),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn delays_round_down_to_a_tier() {
        assert_eq!(
            WaitTier::round_down(Duration::ZERO).delay(),
            Duration::from_millis(100)
        );
        assert_eq!(
            WaitTier::round_down(Duration::from_millis(499)).delay(),
            Duration::from_millis(200)
        );
        assert_eq!(
            WaitTier::round_down(Duration::from_secs(7)).delay(),
            Duration::from_secs(5)
        );
        assert_eq!(
            WaitTier::round_down(Duration::from_secs(86_400)).delay(),
            Duration::from_secs(3_600)
        );
        assert_eq!(
            WaitTier::round_down(Duration::from_secs(1)).queue_name(),
            "jobs.wait.1000"
        );
    }

    #[test]
    fn a_policy_reads_from_its_text_form_and_back() -> Result<(), String> {
        let policy: RetryPolicy = "4:250ms:1m".parse()?;
        assert_eq!(
            policy,
            RetryPolicy::new(4, Duration::from_millis(250), Duration::from_secs(60))
        );
        assert_eq!(policy.to_string().parse::<RetryPolicy>()?, policy);
        assert!("4:250ms".parse::<RetryPolicy>().is_err());
        assert!("0:1s:1s".parse::<RetryPolicy>().is_err());
        Ok(())
    }
}
