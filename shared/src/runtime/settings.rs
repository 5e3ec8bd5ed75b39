//! How a worker consumes: prefetch, concurrency, deadlines and per-kind overrides.

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
    /// Unacked deliveries the broker may push to each consumer (basic.qos).
    #[arg(long, env = "WORKER_PREFETCH", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Jobs run at once by this process.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// On SIGTERM/SIGINT, how long in-flight jobs may still run before the worker leaves
    /// them to be redelivered.
    #[arg(long, env = "WORKER_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Deliveries of one message without an outcome (its worker crashed or was cut off) after
    /// which it is dead-lettered instead of run again.
    #[arg(long, env = "WORKER_MAX_REDELIVERIES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..20))]
    pub max_redeliveries: u32,
    /// Per-kind retry policies, `kind=max_attempts:base:cap`, comma-separated
    /// (e.g. `send_email=8:2s:10m`).
    #[arg(long = "retry-policy", env = "RETRY_POLICIES", value_delimiter = ',')]
    pub retry_policies: Vec<KindSetting<RetryPolicy>>,
    /// Per-kind run timeouts, `kind=duration`, comma-separated (e.g. `process_thumbnails=2m`).
    #[arg(long = "job-timeout", env = "JOB_TIMEOUTS", value_delimiter = ',')]
    pub job_timeouts: Vec<KindSetting<HumanDuration>>,
    /// The broker's `consumer_timeout`: a delivery unacked for longer closes its channel, so
    /// every job timeout must stay below it.
    #[arg(long, env = "BROKER_CONSUMER_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub consumer_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            name: default_name(),
            prefetch: 20,
            concurrency: 10,
            shutdown_timeout: Duration::from_secs(30),
            max_redeliveries: 5,
            retry_policies: Vec::new(),
            job_timeouts: Vec::new(),
            consumer_timeout: Duration::from_secs(30 * 60),
        }
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
