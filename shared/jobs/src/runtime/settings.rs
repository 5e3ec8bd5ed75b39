//! How a worker consumes: concurrency per kind, deadlines and per-kind overrides.

use std::str::FromStr;
use std::time::Duration;

use crate::connection::parse_duration;
use crate::retry::RetryPolicy;

/// The worker runtime's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerSettings {
    /// Name in the broker's connection list and in logs (default: the host name).
    #[arg(long = "worker-name", env = "WORKER_NAME", default_value_t = default_name())]
    pub name: String,
    /// Jobs of each kind run at once by this process. It is also the kind's prefetch: the
    /// broker hands a worker no more jobs than it runs, so none waits in a buffer.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Per-kind concurrency, `kind=n`, comma-separated (e.g. `process_thumbnails=2`).
    #[arg(
        long = "job-concurrency",
        env = "JOB_CONCURRENCY",
        value_delimiter = ','
    )]
    pub job_concurrency: Vec<KindSetting<Concurrency>>,
    /// On SIGTERM/SIGINT, how long in-flight jobs may still run before the worker leaves
    /// them to be redelivered.
    #[arg(long, env = "WORKER_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Times a job may be running alone (in quarantine) when its worker is lost before it is
    /// dead-lettered as one that crashes or hangs its worker.
    #[arg(long, env = "WORKER_MAX_CRASHES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_crashes: u32,
    /// Per-kind retry policies, `kind=max_attempts:base:cap`, comma-separated
    /// (e.g. `send_email=8:2s:10m`).
    #[arg(long = "retry-policy", env = "RETRY_POLICIES", value_delimiter = ',')]
    pub retry_policies: Vec<KindSetting<RetryPolicy>>,
    /// Per-kind run timeouts, `kind=duration`, comma-separated (e.g. `process_thumbnails=2m`).
    #[arg(long = "job-timeout", env = "JOB_TIMEOUTS", value_delimiter = ',')]
    pub job_timeouts: Vec<KindSetting<HumanDuration>>,
    /// The broker's `consumer_timeout`: a delivery unacked for longer closes its channel. The
    /// worker never holds a delivery that long: a job's timeout must leave room to settle it,
    /// and a delivery it cannot settle in time is returned to its queue first.
    #[arg(long, env = "BROKER_CONSUMER_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub consumer_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            name: default_name(),
            concurrency: 10,
            job_concurrency: Vec::new(),
            shutdown_timeout: Duration::from_secs(30),
            max_crashes: 3,
            retry_policies: Vec::new(),
            job_timeouts: Vec::new(),
            consumer_timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl WorkerSettings {
    /// How long a delivery may be held before it must be settled or returned: the broker's
    /// limit less a margin for its own clock, so the broker never closes a channel over it.
    #[must_use]
    pub fn hold_limit(&self) -> Duration {
        let margin = (self.consumer_timeout / 10).min(Duration::from_secs(60));
        self.consumer_timeout.saturating_sub(margin)
    }
}

fn default_name() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned())
}

/// `kind=value`, for per-kind overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSetting<T> {
    /// The job kind.
    pub kind: String,
    /// Its setting.
    pub value: T,
}

impl<T: FromStr<Err = String>> FromStr for KindSetting<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not `kind=value`"))?;
        Ok(Self {
            kind: kind.trim().to_owned(),
            value: value.trim().parse().map_err(|e| format!("{kind}: {e}"))?,
        })
    }
}

/// A [`Duration`] written like `30s` or `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Self)
    }
}

/// Jobs of one kind run at once (and its prefetch): 1 to 65,535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency(pub u16);

impl FromStr for Concurrency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u16>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            _ => Err(format!("`{s}` is not a concurrency from 1 to 65535")),
        }
    }
}
