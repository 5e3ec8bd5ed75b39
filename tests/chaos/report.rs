//! The run's report: the machine, the schedule, each fault with its recovery times, the
//! table of figures, the dead-letter queues and the misses, as markdown. The full profile
//! writes it to CHAOS.md at the repository root; `--quick` only prints it.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::account::Row;
use crate::faults::Outcome;
use crate::schedule::clock;

/// Where and on what the run ran.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub rabbitmq: String,
    pub postgres: String,
}

impl Machine {
    /// This machine, and the versions the stack reported.
    pub fn here(rabbitmq: String, postgres: String) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or("unknown".to_owned(), |k| k.trim().to_owned()),
            rabbitmq,
            postgres,
        }
    }
}

/// Everything the report says.
#[derive(Debug)]
pub struct Report {
    pub profile: &'static str,
    pub started: DateTime<Utc>,
    pub elapsed: Duration,
    pub machine: Machine,
    pub images: String,
    pub schedule: String,
    /// A line on the load phase and the drain.
    pub load: String,
    pub outcomes: Vec<Outcome>,
    pub rows: Vec<Row>,
    pub dlq_rows: Vec<String>,
    pub misses: Vec<String>,
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64()))
}

fn faults_table(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "| # | fault | planned | started | lasted (s) | what happened | uploads refused | \
         first job handled after (s) | first upload accepted after (s) | victim working after (s) |\n\
         | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n",
    );
    for (n, o) in outcomes.iter().enumerate() {
        let misses = if o.misses.is_empty() {
            String::new()
        } else {
            format!(" **MISS: {}**", crate::dlq::cell(&o.misses.join("; ")))
        };
        text.push_str(&format!(
            "| {} | {} | +{} | +{} | {:.1} | {}{misses} | {} | {} | {} | {} |\n",
            n + 1,
            o.fault,
            clock(o.planned),
            clock(o.started),
            o.lasted.as_secs_f64(),
            crate::dlq::cell(&o.note),
            o.refused,
            seconds(o.handling),
            seconds(o.uploads),
            seconds(o.victim),
        ));
    }
    text
}

fn figures_table(rows: &[Row]) -> String {
    let mut text = String::from("| figure | value | must be | |\n| --- | --- | --- | --- |\n");
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.figure,
            crate::dlq::cell(&row.value),
            row.expected,
            if row.ok { "ok" } else { "**MISS**" }
        ));
    }
    text
}

/// The report as markdown.
pub fn render(report: &Report) -> String {
    let m = &report.machine;
    let verdict = if report.misses.is_empty() {
        "**PASSED**: every check met.".to_owned()
    } else {
        format!(
            "**FAILED**: {} misses (listed at the end).",
            report.misses.len()
        )
    };
    let mut misses = String::new();
    for miss in &report.misses {
        misses.push_str(&format!("- {}\n", miss.replace('\n', " ")));
    }
    if misses.is_empty() {
        misses.push_str("None.\n");
    }
    format!(
        "# Chaos run\n\n\
         `cargo run -p integration-tests --bin chaos{}` (profile `{}`), {} UTC, {:.1} min.\n\n\
         Machine: {}, {} cores, Linux {}; RabbitMQ {} ({}), PostgreSQL {}. The broker, \
         PostgreSQL, the producer, three workers and the load client share the machine.\n\n\
         {verdict}\n\n{}\n\n\
         ## Schedule (printed at the start)\n\n{}\n\
         ## Faults as injected, and the recovery after each\n\n\
         Times are from the end of the fault (broker back, connections closed, worker killed or \
         resumed, alarm lifted, plant settled).\n\n{}\n\
         ## Figures\n\n{}\n\
         ## Dead-letter queues\n\n| job | queue | id | reason (`x-job-error`) | verdict |\n\
         | --- | --- | --- | --- | --- |\n{}\n\n\
         ## Misses\n\n{misses}",
        if report.profile == "quick" {
            " -- --quick"
        } else {
            ""
        },
        report.profile,
        report.started.format("%Y-%m-%d %H:%M"),
        report.elapsed.as_secs_f64() / 60.0,
        m.cpu,
        m.cores,
        m.kernel,
        m.rabbitmq,
        report.images,
        m.postgres,
        report.load,
        report.schedule,
        faults_table(&report.outcomes),
        figures_table(&report.rows),
        report.dlq_rows.join("\n"),
    )
}

/// `CHAOS.md` at the repository root.
pub fn chaos_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("CHAOS.md"), |root| root.join("CHAOS.md"))
}
