//! Resource alarms: the memory or disk alarm raised with `rabbitmqctl`, uploads probed while
//! it is up (each must be accepted within 10 s: the outbox takes it while the broker blocks
//! publishers, and the drain checks it is processed once the alarm is lifted), then lifted.

use std::time::Duration;

use anyhow::anyhow;
use futures_util::future::join_all;
use support::wait_until;

use crate::books::Upload;
use crate::faults::{Injected, Injector};

/// Uploads fired while an alarm is up.
const PROBES: u32 = 3;
/// An upload must be answered within this.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Which alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    Memory,
    Disk,
}

impl Alarm {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Disk => "disk",
        }
    }

    /// `rabbitmqctl` arguments that raise the alarm.
    fn raise(self) -> [&'static str; 2] {
        match self {
            Self::Memory => ["set_vm_memory_high_watermark", "0.0001"],
            // A petabyte of free disk is never there.
            Self::Disk => ["set_disk_free_limit", "1000000000000000"],
        }
    }

    /// `rabbitmqctl` arguments that lift it again: the image's defaults.
    fn lift(self, rabbitmq_version: &str) -> [&'static str; 2] {
        match self {
            Self::Memory if rabbitmq_version.starts_with("3.") => {
                ["set_vm_memory_high_watermark", "0.4"]
            }
            Self::Memory => ["set_vm_memory_high_watermark", "0.6"],
            Self::Disk => ["set_disk_free_limit", "50MB"],
        }
    }
}

impl Injector<'_> {
    pub(crate) async fn alarm(&self, alarm: Alarm) -> anyhow::Result<Injected> {
        let version = self
            .stack
            .management()
            .version()
            .await
            .map_err(|e| anyhow!(e))?;
        self.stack.rabbitmqctl(&alarm.raise()).await?;
        let mut misses = Vec::new();
        let raised = self.wait_alarm(alarm, true).await;
        let note = match raised {
            Ok(()) => self.probe(alarm, &mut misses).await,
            Err(e) => {
                misses.push(e);
                String::from("alarm never shown")
            }
        };
        // Lifted whatever happened.
        self.stack.rabbitmqctl(&alarm.lift(&version)).await?;
        if let Err(e) = self.wait_alarm(alarm, false).await {
            misses.push(e);
        }
        let mut injected = Injected::now(format!("{} alarm: {note}; lifted", alarm.name()));
        injected.misses = misses;
        Ok(injected)
    }

    async fn wait_alarm(&self, alarm: Alarm, up: bool) -> Result<(), String> {
        let what = format!(
            "the {} alarm to be {}",
            alarm.name(),
            if up { "raised" } else { "lifted" }
        );
        wait_until(Duration::from_secs(30), &what, || async {
            self.stack.management().alarms().await.is_ok_and(|a| {
                let on = match alarm {
                    Alarm::Memory => a.mem_alarm,
                    Alarm::Disk => a.disk_free_alarm,
                };
                on == up
            })
        })
        .await
    }

    /// Fires uploads while the alarm is up; each must be accepted quickly.
    async fn probe(&self, alarm: Alarm, misses: &mut Vec<String>) -> String {
        let base_seed = match alarm {
            Alarm::Memory => 2_000_000,
            Alarm::Disk => 2_100_000,
        };
        let probes = (0..PROBES).map(|i| async move {
            let user = format!("chaos-probe-{}-{i}", alarm.name());
            let (answer, detail) = self.uploader.post(&user, base_seed + i).await;
            (user, answer, detail)
        });
        let mut answered = Vec::new();
        for (user, answer, detail) in join_all(probes).await {
            answered.push(format!(
                "{} in {:.1} s",
                answer.status,
                answer.latency.as_secs_f64()
            ));
            if answer.status != 202 || answer.latency > ANSWER_WITHIN {
                misses.push(format!(
                    "upload during the {} alarm answered {} in {:.1} s (json error: {}): {}",
                    alarm.name(),
                    answer.status,
                    answer.latency.as_secs_f64(),
                    answer.json_error,
                    detail.clone().unwrap_or_default()
                ));
            }
            if let (202, Some(image_id)) = (answer.status, detail) {
                self.books.accept_upload(Upload { user, image_id });
            }
        }
        format!("uploads answered {}", answered.join(", "))
    }
}
