//! Logs of the code under test, captured per test: the harness shows them for a failing test
//! only, so a flaky failure in CI comes with the worker's and publisher's own account.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the test subscriber once; later calls are no-ops. `RUST_LOG` overrides the
/// default filter (the library at info, everything else at warn).
pub fn capture() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,rabbitmq_jobs=info,photos=info,worker=info,producer=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The log lines written in this thread while capturing.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures until the returned guard is dropped.
    #[must_use]
    pub fn capture(&self) -> impl Sized {
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish()
            .set_default()
    }

    /// Captured lines that contain `text`.
    pub fn lines_with(&self, text: &str) -> usize {
        self.lines_where(|line| line.contains(text))
    }

    /// Captured lines for which `keep` holds.
    pub fn lines_where(&self, keep: impl Fn(&str) -> bool) -> usize {
        self.text().lines().filter(|line| keep(line)).count()
    }

    /// Everything captured.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}
