//! Driving `docker compose` (v2) or `docker-compose` (1.29), whichever this machine has.

use std::process::Command;

/// One compose project: the repository's compose.yaml under a name of its own.
pub struct Compose {
    program: Vec<String>,
    project: String,
    env: Vec<(String, String)>,
}

impl Compose {
    /// Picks `docker compose` if it works, else `docker-compose`.
    pub fn new(project: &str, env: Vec<(String, String)>) -> Self {
        let v2 = Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success());
        let program = if v2 {
            vec!["docker", "compose"]
        } else {
            vec!["docker-compose"]
        };
        Self {
            program: program.into_iter().map(String::from).collect(),
            project: project.to_owned(),
            env,
        }
    }

    /// The command line in use, for the report.
    pub fn program(&self) -> String {
        self.program.join(" ")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program[0]);
        command
            .args(&self.program[1..])
            .args(["--project-name", &self.project])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs a compose command, output shown, and fails on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Result<(), String> {
        let status = self
            .command(args)
            .status()
            .map_err(|e| format!("{}: {e}", self.program()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{} {}` failed: {status}",
                self.program(),
                args.join(" ")
            ))
        }
    }

    /// Runs a compose command and returns its standard output.
    pub fn output(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .command(args)
            .output()
            .map_err(|e| format!("{}: {e}", self.program()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "`{} {}` failed: {}",
                self.program(),
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// The running containers of `service`.
    pub fn containers(&self, service: &str) -> Result<Vec<String>, String> {
        Ok(self
            .output(&["ps", "-q", service])?
            .lines()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

impl Drop for Compose {
    /// Tears the project down, volumes included, whatever happened.
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "--volumes", "--remove-orphans", "--timeout", "5"])
            .status();
    }
}
