//! Celery's side of the comparison: publisher processes started together on a go signal,
//! and workers of each pool at a total prefetch equal to ours.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::processes::Process;
use crate::python;
use crate::throughput::PREFETCH;

/// A Celery worker pool, at a prefetch multiplier that makes its total prefetch (multiplier
/// × concurrency) equal to ours.
pub struct Pool {
    pub label: &'static str,
    pub pool: &'static str,
    pub concurrency: u16,
}

impl Pool {
    pub fn multiplier(&self) -> u16 {
        PREFETCH / self.concurrency
    }
}

/// Celery's pools: its best is reported. `threads` is bound to about one core by the GIL,
/// `prefork -c 2` runs a process per core (and hands each task to it over a pipe).
pub const POOLS: [Pool; 4] = [
    Pool {
        label: "solo",
        pool: "solo",
        concurrency: 1,
    },
    Pool {
        label: "threads ×4",
        pool: "threads",
        concurrency: 4,
    },
    Pool {
        label: "threads ×8",
        pool: "threads",
        concurrency: 8,
    },
    Pool {
        label: "prefork ×2",
        pool: "prefork",
        concurrency: 2,
    },
];

/// One Celery configuration (`defaults` or `safe`) on its own quorum queue.
pub struct Celery {
    pub python: PathBuf,
    pub url: String,
    pub mode: &'static str,
}

impl Celery {
    pub fn queue(&self) -> String {
        format!("celery_{}", self.mode)
    }

    fn env(&self, multiplier: u16) -> [(&'static str, String); 4] {
        [
            ("CELERY_BROKER_URL", self.url.clone()),
            ("CELERY_MODE", self.mode.to_owned()),
            ("CELERY_QUEUE", self.queue()),
            ("CELERY_PREFETCH_MULTIPLIER", multiplier.to_string()),
        ]
    }

    /// `count` tasks by `processes` publisher processes, each `delay()`-ing its share one at
    /// a time. All connect and declare first, then start on one signal; the rate is the
    /// total over the span from the first start to the last end (their own clocks).
    pub fn publish(&self, processes: usize, count: usize) -> Result<f64, String> {
        let mut children = (0..processes)
            .map(|i| self.publisher(count / processes + usize::from(i < count % processes)))
            .collect::<Result<Vec<_>, _>>()?;
        let timed = go(&mut children);
        if timed.is_err() {
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let (first, last) = timed?;
        Ok(count as f64 / (last - first))
    }

    fn publisher(&self, count: usize) -> Result<Child, String> {
        let count = count.to_string();
        Command::new(&self.python)
            .args(["celery_baseline.py", "publish", "--wait", "--count", &count])
            .current_dir(python::scripts())
            .envs(self.env(4).iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting a Celery publisher: {e}"))
    }

    /// Starts a worker of `pool` on this configuration's queue.
    pub fn worker(&self, pool: &Pool) -> Process {
        let concurrency = pool.concurrency.to_string();
        let mut args = vec!["-m", "celery", "-A", "celery_baseline", "worker"];
        let queue = self.queue();
        args.extend(["--queues", &queue, "--loglevel", "ERROR"]);
        args.extend([
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]);
        args.extend(["--pool", pool.pool, "--concurrency", &concurrency]);
        // Quiet: no warning about running as root, nor about ETA tasks on a direct exchange.
        let mut env = self.env(pool.multiplier()).to_vec();
        env.push(("PYTHONWARNINGS", "ignore".into()));
        Process::spawn_in(self.python.clone(), &args, &env, python::scripts())
    }
}

/// Waits until every publisher is ready, starts them all, and returns the first start and
/// the last end they report.
fn go(children: &mut [Child]) -> Result<(f64, f64), String> {
    let mut outputs = Vec::new();
    for child in children.iter_mut() {
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut ready = String::new();
        stdout.read_line(&mut ready).map_err(|e| e.to_string())?;
        if !ready.contains("ready") {
            return Err(format!("a Celery publisher is not ready: {ready:?}"));
        }
        outputs.push(stdout);
    }
    for child in children.iter_mut() {
        let stdin = child.stdin.as_mut().ok_or("no stdin")?;
        stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
    }
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    for (child, stdout) in children.iter_mut().zip(outputs) {
        let report = stdout
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with('{'))
            .ok_or("a Celery publisher printed no report")?;
        let report: serde_json::Value =
            serde_json::from_str(&report).map_err(|e| format!("{report}: {e}"))?;
        let (Some(start), Some(end)) = (report["start"].as_f64(), report["end"].as_f64()) else {
            return Err(format!("no times in {report}"));
        };
        (first, last) = (first.min(start), last.max(end));
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a Celery publisher failed: {status}"));
        }
    }
    Ok((first, last))
}
