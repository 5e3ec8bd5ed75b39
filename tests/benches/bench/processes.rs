//! The real binaries as child processes, so that their memory can be measured (peak RSS).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Builds `producer` and `worker` in release mode and returns the folder holding them.
pub fn build_binaries() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "producer", "-p", "worker"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building producer and worker failed");
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release"))
}

/// A child process, killed when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn spawn(program: PathBuf, args: &[&str], envs: &[(&str, String)]) -> Self {
        Self::spawn_in(
            program,
            args,
            envs,
            std::env::current_dir().unwrap_or_default(),
        )
    }

    /// Like [`Process::spawn`], in the folder `dir`.
    pub fn spawn_in(
        program: PathBuf,
        args: &[&str],
        envs: &[(&str, String)],
        dir: PathBuf,
    ) -> Self {
        let child = Command::new(&program)
            .args(args)
            .current_dir(dir)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Self { child }
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib(self.child.id())
    }

    /// SIGTERM, then wait: the process drains and exits.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of process `pid` so far (VmHWM), in MiB; 0 if it is gone.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A free local port.
pub fn free_port() -> u16 {
    support::free_port().expect("free port")
}
