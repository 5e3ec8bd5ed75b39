//! The Python baselines (Celery, Pillow): a venv made by `tests/benches/python/setup.sh`.

use std::path::PathBuf;
use std::process::Command;

/// The folder of the Python scripts.
pub fn scripts() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python"))
}

/// The venv's interpreter, set up on first use; `Err` says why Python baselines are skipped.
pub fn interpreter() -> Result<PathBuf, String> {
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-venv"));
    let status = Command::new("bash")
        .arg(scripts().join("setup.sh"))
        .arg(&venv)
        .status()
        .map_err(|e| format!("cannot run setup.sh: {e}"))?;
    if !status.success() {
        return Err(format!(
            "setup.sh failed ({status}): is python3 ≥ 3.11 with pip installed?"
        ));
    }
    Ok(venv.join("bin/python"))
}

/// Runs a script and parses each stdout line as JSON.
pub fn run_json(
    python: &PathBuf,
    args: &[String],
    envs: &[(&str, String)],
) -> Result<Vec<serde_json::Value>, String> {
    let output = Command::new(python)
        .args(args)
        .current_dir(scripts())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).map_err(|e| format!("{line}: {e}")))
        .collect()
}
