//! The app's own binaries run in containers with the settings compose.yaml ships (CPU
//! weight, log level and sink, files on a Docker volume), so that the spike measures what
//! users run rather than a tuned set-up. The binaries are the host's release build, mounted
//! into the runtime image the app's Dockerfile uses (`debian:bookworm-slim`).

use std::path::Path;
use std::process::{Command, Stdio};

/// The runtime image of the app's Dockerfile.
const RUNTIME_IMAGE: &str = "debian:bookworm-slim";

/// What compose.yaml ships for each worker: its CPU weight beside the web tier, broker and
/// database (Docker's default is 1024), its per-kind concurrency and its database pool.
pub const WORKER_CPU_SHARES: u32 = 128;
pub const WORKER_JOB_CONCURRENCY: &str = "process_thumbnails=4,moderate_content=4";
pub const WORKER_DATABASE_CONNECTIONS: &str = "20";
/// compose.yaml's log level for every app (`RUST_LOG` default); logs go to Docker's log.
pub const LOG_LEVEL: &str = "info";

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("running docker");
    assert!(output.status.success(), "docker {args:?} failed");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `url` (on the host's mapped `host_port`) pointed at the container's own address and
/// `port` on Docker's bridge instead: the app containers then reach the broker and the
/// database directly, as in compose, not through Docker's userland port proxy (which cost
/// about a quarter of a core and a hop per round trip during the spike).
pub fn direct_url(url: &str, container_id: &str, host_port: u16, port: u16) -> String {
    let address = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container_id,
    ]);
    let mapped = format!("127.0.0.1:{host_port}");
    assert!(url.contains(&mapped), "{url} is not on {mapped}");
    url.replace(&mapped, &format!("{address}:{port}"))
}

/// A Docker volume, removed when dropped.
pub struct Volume(pub String);

impl Volume {
    pub fn create(name: &str) -> Self {
        docker(&["volume", "create", name]);
        Self(name.to_owned())
    }

    /// Files in `dir` of the volume.
    pub fn count_files(&self, dir: &str) -> usize {
        let mount = format!("{}:/data", self.0);
        let listing = docker(&["run", "--rm", "-v", &mount, RUNTIME_IMAGE, "ls", "-1", dir]);
        listing.lines().filter(|l| !l.is_empty()).count()
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .stdout(Stdio::null())
            .status();
    }
}

/// One app process in its container, on the host's network; removed when dropped.
pub struct Container {
    id: String,
}

impl Container {
    /// Runs `bin/<program> args` with `env`, the volume at `/data`, and a CPU weight.
    pub fn run(
        bin: &Path,
        program: &str,
        args: &[&str],
        env: &[(&str, String)],
        volume: &Volume,
        cpu_shares: Option<u32>,
    ) -> Self {
        let (bin_mount, data_mount) = (
            format!("{}:/app:ro", bin.display()),
            format!("{}:/data", volume.0),
        );
        let blocklist = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/blocklist.txt");
        let blocklist_mount = format!("{blocklist}:/etc/photos/blocklist.txt:ro");
        let shares = cpu_shares.map(|s| s.to_string());
        let mut command: Vec<String> = ["run", "-d", "--network", "host", "-v", &bin_mount]
            .iter()
            .chain(&["-v", &data_mount, "-v", &blocklist_mount])
            .map(|s| (*s).to_owned())
            .collect();
        if let Some(shares) = &shares {
            command.extend(["--cpu-shares".to_owned(), shares.clone()]);
        }
        for (key, value) in env {
            command.extend(["-e".to_owned(), format!("{key}={value}")]);
        }
        command.extend([RUNTIME_IMAGE.to_owned(), format!("/app/{program}")]);
        command.extend(args.iter().map(|a| (*a).to_owned()));
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        Self {
            id: docker(&command),
        }
    }

    /// Peak resident memory of the app process so far (its VmHWM, read from the host).
    pub fn peak_rss_mib(&self) -> f64 {
        let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &self.id]);
        pid.parse().map_or(0.0, crate::processes::peak_rss_mib)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.id])
            .stdout(Stdio::null())
            .status();
    }
}
